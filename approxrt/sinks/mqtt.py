"""`MqttSink`: every frame's detections published over MQTT, none lost, none twice.

Each result's event line (the JSONL event, see `approxrt.sinks.events`) first goes
to an on-disk spool; a publisher thread sends the spool's lines in order, one at
a time, and moves past a line only once the broker acknowledged it (QoS 1
PUBACK). While the broker is unreachable the spool grows on disk and the stream
goes on; when the broker is back, paho-mqtt reconnects and the spool is replayed
in order. A message in flight when the connection drops is re-sent by paho on
reconnect, not by us, so it is not sent twice by the sink. The spool's read
position is kept on disk, so a daemon restarted with the same spool picks up
where it stopped; a crash between an acknowledgement and saving the position can
repeat that one message.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection
from pathlib import Path

import paho.mqtt.client as mqtt

from approxrt.detections import Detections
from approxrt.result import FrameResult
from approxrt.sinks.base import BaseSink
from approxrt.sinks.events import event_json

log = logging.getLogger(__name__)

# The spool file is emptied once fully sent and at least this large.
_COMPACT_BYTES = 1 << 20


class DiskSpool:
    """An append-only file of lines with a saved read position.

    ``<path>`` holds the lines, ``<path>.pos`` the byte offset of the first line
    not yet acknowledged.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pos_path = self.path.with_name(self.path.name + ".pos")
        self._lock = threading.Lock()
        self._writer = open(self.path, "ab")
        self._reader = open(self.path, "rb")
        self._position = self._saved_position()
        self.pending = self._count_pending()

    def append(self, line: str) -> None:
        with self._lock:
            self._writer.write(line.encode() + b"\n")
            self._writer.flush()
            self.pending += 1

    def peek(self) -> str | None:
        """The oldest unacknowledged line, or None when all were acknowledged."""
        with self._lock:
            self._reader.seek(self._position)
            line = self._reader.readline()
        return line[:-1].decode() if line.endswith(b"\n") else None

    def pop(self) -> None:
        """Mark the oldest line acknowledged (and save that on disk)."""
        with self._lock:
            self._reader.seek(self._position)
            self._position += len(self._reader.readline())
            self.pending -= 1
            if self.pending == 0 and self._position >= _COMPACT_BYTES:
                self._writer.truncate(0)
                self._position = 0
            self._save_position()

    def close(self) -> None:
        self._writer.close()
        self._reader.close()

    def _saved_position(self) -> int:
        try:
            return min(int(self._pos_path.read_text()), self.path.stat().st_size)
        except (OSError, ValueError):
            return 0

    def _save_position(self) -> None:
        temporary = self._pos_path.with_name(self._pos_path.name + ".tmp")
        temporary.write_text(str(self._position))
        os.replace(temporary, self._pos_path)

    def _count_pending(self) -> int:
        self._reader.seek(self._position)
        return sum(1 for _ in self._reader)


class MqttSink(BaseSink):
    """Publishes one JSON message per frame to ``topic``, spooled on disk.

    Args:
        host, port: the broker.
        topic: where each frame's event goes.
        spool_path: the spool file (see `DiskSpool`); one per stream.
        qos: 1 (at least once, made once by the sink) or 2.
        client_id: MQTT client id; default one from the topic.
        classes: class ids or COCO names to keep in ``detections``; default all.
        stream: stream name in the messages; default each frame's ``source_id``.
        drain_timeout_s: how long `close` waits for the spool to be sent; what
            is left stays spooled for the next start.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topic: str,
        spool_path: str | Path,
        qos: int = 1,
        client_id: str | None = None,
        classes: Collection[int | str] | str | None = None,
        stream: str | None = None,
        drain_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(classes)
        self.topic = topic
        self.qos = qos
        self.stream = stream
        self.drain_timeout_s = drain_timeout_s
        self.spool = DiskSpool(spool_path)
        self.published = 0
        self._acked: set[int] = set()
        self._acked_changed = threading.Condition()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._abandon = threading.Event()  # closing, and the drain timed out
        self._client = self._make_client(client_id or f"approxrt-{topic}")
        self._client.connect_async(host, port, keepalive=15)
        self._client.loop_start()
        self._publisher = threading.Thread(
            target=self._publish_spool, name=f"mqtt {topic}", daemon=True
        )
        self._publisher.start()

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def _make_client(self, client_id: str) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
        )
        client.reconnect_delay_set(min_delay=1, max_delay=8)
        client.on_publish = self._on_publish
        return client

    def _on_publish(self, _client, _userdata, mid, _reason, _properties) -> None:
        with self._acked_changed:
            self._acked.add(mid)
            self._acked_changed.notify_all()

    def _write(self, result: FrameResult, detections: Detections) -> None:
        self.spool.append(event_json(result, detections, self.stream))
        self._wake.set()

    def _publish_spool(self) -> None:
        while not self._abandon.is_set():
            line = self.spool.peek()
            if line is None:
                if self._closing.is_set():
                    return
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            if not self._client.is_connected():
                if self._closing.is_set():
                    return  # the rest stays spooled for the next start
                self._closing.wait(0.2)
                continue
            if self._send(line):
                self.spool.pop()
                self.published += 1

    def _send(self, line: str) -> bool:
        """Publish ``line`` and wait for its acknowledgement (re-sent by paho
        after a reconnect); False when closing first."""
        mid = self._client.publish(self.topic, line, qos=self.qos).mid
        with self._acked_changed:
            while mid not in self._acked:
                if self._abandon.is_set() or (
                    self._closing.is_set() and not self._client.is_connected()
                ):
                    return False
                self._acked_changed.wait(0.2)
            self._acked.discard(mid)
        return True

    def _close(self) -> None:
        self._closing.set()
        self._wake.set()
        self._publisher.join(self.drain_timeout_s)
        self._abandon.set()
        self._publisher.join()
        if self.spool.pending:
            log.warning(
                "%s: %d messages not sent yet stay in %s for the next start",
                self.topic,
                self.spool.pending,
                self.spool.path,
            )
        self._client.disconnect()
        self._client.loop_stop()
        self.spool.close()
