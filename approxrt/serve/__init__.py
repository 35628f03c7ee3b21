"""The on-device daemon (`approxrt serve`): many streams, one model pool, an API.

``spec`` (the settings and stream entries), ``frames`` (decoding threads with
newest-frame queues and reconnects), ``stream`` (one stream's inference and
sinks), ``manager`` (streams over the shared model pool), ``metrics``
(Prometheus), ``app`` (the HTTP API and status page), ``daemon`` (start-up,
systemd, signals).
"""
