"""Events out: subscriptions to a world's events, a transactional outbox of deliveries, the sender that delivers
them signed the Standard Webhooks way with retries on the world's clock, and the built-in inbox."""
