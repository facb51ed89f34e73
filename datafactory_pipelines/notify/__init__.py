"""Owner notifications: the outbox (written with each lead change), webhooks and email deliveries."""
