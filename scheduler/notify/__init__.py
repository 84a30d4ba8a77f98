"""Notifications of finished runs: the outbox, its sender threads, and one module per channel.

The decision to notify is written in the transaction that ends a run (`outbox.enqueue`);
sender threads, apart from the scheduling loop, deliver it with timeouts, retry with
backoff and record every outcome. Outbound HTTP goes only to resolved addresses the
operator's allow-list admits (`destinations`).
"""
