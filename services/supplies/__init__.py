"""The supplies service: batches and deliveries, A/B logistics shifts, medicine custody, donations."""
