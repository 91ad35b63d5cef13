"""Outbound webhooks: admin-managed subscriptions, signed POSTs, retries, a delivery log, replay."""
