"""Events from other systems: CloudEvents in (`types`), the event table (`feed`), applied by rules (`apply`)."""
