"""MQTT output against a real mosquitto broker: stopped and restarted mid-stream,
every result arrives, in order, exactly once."""

import json
import threading

import numpy as np
import paho.mqtt.client as mqtt
from serve_parts import free_port, mosquitto_args, wait_until

from approxrt.branch import Branch
from approxrt.detections import Detections
from approxrt.frame import Frame
from approxrt.result import STAGES, FrameResult
from approxrt.sinks.mqtt import MqttSink

BRANCH = Branch.parse("yolox_nano/s320/si4/kcf/ds2")
IMAGE = np.zeros((8, 8, 3), np.uint8)


def _result(index):
    boxes = Detections(
        np.array([[1, 2, 5, 6]], np.float32),
        np.array([0.9], np.float32),
        np.zeros(1, np.int64),
        np.array([index % 3], np.int64),
    )
    return FrameResult(
        Frame(IMAGE, index, index / 10, "cam"),
        boxes,
        BRANCH,
        index % 4 == 0,
        dict.fromkeys(STAGES, 1.0),
        4.0,
    )


class Subscriber:
    """A durable subscriber: the broker keeps its messages while it is away."""

    def __init__(self, port, topic):
        self.indices: list[int] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub", clean_session=False
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _client, _userdata, message):
        with self._lock:
            self.indices.append(json.loads(message.payload)["frame_index"])

    def count(self):
        with self._lock:
            return len(self.indices)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _broker(helpers, tmp_path, port):
    (tmp_path / "db").mkdir(exist_ok=True)
    args = mosquitto_args(port, tmp_path)
    config = args[-1]
    with open(config, "a") as extra:
        extra.write(f"persistence true\npersistence_location {tmp_path / 'db'}/\n")
    return helpers(args, ready_word=None), args


def test_a_broker_outage_loses_nothing_and_repeats_nothing(helpers, tmp_path):
    port = free_port()
    broker, args = _broker(helpers, tmp_path, port)
    topic = "approxrt/cam/detections"
    wait_until(lambda: _connects(port), 10, "the broker")
    subscriber = Subscriber(port, topic)
    wait_until(subscriber.subscribed.is_set, 10, "the subscription")
    sink = MqttSink("127.0.0.1", port, topic, tmp_path / "cam.spool", stream="cam")
    try:
        wait_until(lambda: sink.connected, 10, "the sink to connect")
        for index in range(30):
            sink.write(_result(index))
        wait_until(lambda: subscriber.count() == 30, 20, "the first 30 messages")

        broker.process.terminate()  # a clean stop: the broker saves its sessions
        broker.process.wait(10)
        for index in range(30, 60):
            sink.write(_result(index))
        wait_until(lambda: sink.spool.pending == 30, 10, "30 spooled messages")

        helpers(args, ready_word=None)
        wait_until(lambda: subscriber.count() >= 60, 40, "the spooled messages")
        wait_until(lambda: sink.spool.pending == 0, 10, "an empty spool")
    finally:
        sink.close()
        subscriber.close()
    assert subscriber.indices == list(range(60))


def test_what_was_spooled_at_close_is_sent_by_the_next_start(helpers, tmp_path):
    port = free_port()
    spool = tmp_path / "cam.spool"
    topic = "approxrt/cam/detections"
    offline = MqttSink("127.0.0.1", port, topic, spool, drain_timeout_s=0.2)
    for index in range(5):
        offline.write(_result(index))
    offline.close()  # no broker yet: the five stay on disk
    _broker(helpers, tmp_path, port)
    wait_until(lambda: _connects(port), 10, "the broker")
    subscriber = Subscriber(port, topic)
    wait_until(subscriber.subscribed.is_set, 10, "the subscription")
    restarted = MqttSink("127.0.0.1", port, topic, spool)
    try:
        assert restarted.spool.pending == 5
        wait_until(lambda: subscriber.count() == 5, 20, "the five spooled messages")
    finally:
        restarted.close()
        subscriber.close()
    assert subscriber.indices == list(range(5))


def _connects(port):
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
