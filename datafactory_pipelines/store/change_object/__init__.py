"""The change object (store/change.py's `StoreChange`) over one connection and its open transaction, shared by
both backends: its methods by table family (events, deliveries, tracking links, history, outbox)."""
