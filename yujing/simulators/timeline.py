"""The message stream of a fleet plus a plan: every publish, in time order, deterministic.

`Timeline` is a discrete-event simulation over simulated milliseconds since the scenario
start. Each device ticks at its reporting interval (with a fixed phase and a little jitter,
both drawn from the seed); the undisturbed signal is always sampled, even while a device
is silent, so incidents never shift the noise of anything else.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from yujing.simulators import faults
from yujing.simulators.fleet import DeviceRegistration, Fleet
from yujing.simulators.incidents import Fault, Plan, ScheduledEvent, within
from yujing.simulators.signals import PointSignal, halted_power, spec_for
from yujing.simulators.wire import Message, encode, event, reading, status

MAX_FUTURE_SKEW_MS = 300_000  # docs/contracts.md: over 5 minutes ahead is bad_timestamp
SHIFT_CHANGE_HOURS = (7, 8, 15, 16, 23, 0)


@dataclass
class DeviceSim:
    reg: DeviceRegistration
    signals: dict[str, PointSignal]
    schedule: random.Random
    interval_ms: int
    halted: bool
    seq: int = 0
    last: dict[str, float] = field(default_factory=dict)
    stuck_at: dict[str, float] = field(default_factory=dict)
    buffer: list[dict[str, Any]] = field(default_factory=list)
    last_message: Message | None = None
    hold_next: bool = False
    held: Message | None = None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class Timeline:
    def __init__(
        self,
        fleet: Fleet,
        plan: Plan,
        *,
        start_ms: int,
        duration_ms: int | None,
        ts_scale: float = 1.0,
        announce: bool = True,
        local_start_ms: int = 0,
    ) -> None:
        self.fleet, self.plan = fleet, plan
        # The scenario's local time of day at t = 0: daily cycles and shifts follow it, not
        # the wall clock, so the readings do not depend on when the scenario is run.
        self.local_start_ms = local_start_ms
        self.start_ms, self.duration_ms, self.ts_scale = start_ms, duration_ms, ts_scale
        self.announce = announce
        self.devices = [self._device_sim(d) for d in fleet.devices]
        self._by_key = {d.reg.key: d for d in self.devices}
        self._heap: list[tuple[int, int, int, str, Any]] = []
        self._n = 0
        self._out: list[Message] = []

    def _device_sim(self, reg: DeviceRegistration) -> DeviceSim:
        halted = self.fleet.site_state(reg.enterprise, reg.site) != "operating"
        signals = {}
        for point in reg.points:
            spec = halted_power(reg) if point == "p_active" and halted else spec_for(reg, point)
            signals[point] = PointSignal(spec, self.fleet.seed_of(reg, point))
        schedule = random.Random(self.fleet.seed_of(reg, "schedule"))
        interval_ms = round(reg.interval_s * 1000)
        return DeviceSim(reg, signals, schedule, interval_ms, halted)

    def ts(self, t_ms: int) -> int:
        """Event time (epoch ms) of simulated time `t_ms`."""
        return self.start_ms + round(t_ms * self.ts_scale)

    def __iter__(self) -> Iterator[Message]:
        self._seed_heap()
        while self._heap:
            t, _, _, kind, ref = heapq.heappop(self._heap)
            if self.duration_ms is not None and t > self.duration_ms:
                break
            getattr(self, f"_on_{kind}")(t, ref)
            yield from self._out
            self._out.clear()

    def _push(self, t: int, prio: int, kind: str, ref: Any) -> None:
        self._n += 1
        heapq.heappush(self._heap, (t, prio, self._n, kind, ref))

    def _seed_heap(self) -> None:
        for dev in self.devices:
            if self.announce:
                self._push(0, 0, "status", (dev, "online", ""))
            self._push(round(dev.schedule.uniform(0, dev.interval_ms)), 2, "tick", dev)
        for (ent, site), spans in self.plan.outages.items():
            for a, b in spans:
                self._push(a, 1, "outage", (ent, site, "offline"))
                self._push(b, 1, "outage", (ent, site, "online"))
        for ev in self.plan.events:
            self._push(ev.at_ms, 3, "event", ev)
        for fault in self.plan.faults:
            self._push(fault.at_ms, 3, "fault", fault)
        for st in self.plan.statuses:
            dev = self._by_key[f"{st.enterprise}/{st.device}"]
            self._push(st.at_ms, 1, "status", (dev, st.state, st.detail))

    # --- handlers, one per heap item kind ---

    def _on_status(self, t: int, ref: tuple[DeviceSim, str, str]) -> None:
        dev, state, detail = ref
        payload = encode(status(self.ts(t), state, detail))
        self._emit(
            Message(
                t,
                dev.reg.topic("status"),
                payload,
                dev.reg.enterprise,
                dev.reg.device,
                (self.ts(t),),
                retain=True,
                note="status",
            )
        )

    def _on_outage(self, t: int, ref: tuple[str, str, str]) -> None:
        ent, site, state = ref
        for dev in self.devices:
            if dev.reg.enterprise != ent or dev.reg.site != site:
                continue
            # The broker publishes the gateway's last will for its devices when it drops off.
            self._on_status(t, (dev, state, "gateway" if state == "offline" else ""))
            if state == "online" and dev.buffer:
                self._flush(t, dev)

    def _flush(self, t: int, dev: DeviceSim) -> None:
        """Store-and-forward catch-up: everything buffered, oldest first, in `batch` form."""
        for i in range(0, len(dev.buffer), faults.MAX_BATCH_ENTRIES):
            chunk = dev.buffer[i : i + faults.MAX_BATCH_ENTRIES]
            ts = tuple(int(e["ts"]) for e in chunk)
            msg = Message(
                t,
                dev.reg.topic(),
                encode({"batch": chunk}),
                dev.reg.enterprise,
                dev.reg.device,
                ts,
                note="batch",
            )
            self._emit_telemetry(dev, msg)
        dev.buffer.clear()

    def _on_tick(self, t: int, dev: DeviceSim) -> None:
        jitter = round(dev.schedule.uniform(-0.01, 0.01) * dev.interval_ms)
        self._push(t + dev.interval_ms + jitter, 2, "tick", dev)
        if dev.reg.kind == "electronic_seal":
            self._seal_activity(t, dev)
            return
        values = {p: self._value(t, dev, p, sig) for p, sig in dev.signals.items()}
        reg = dev.reg
        if within(self.plan.silent.get((reg.enterprise, reg.device), []), t) or not values:
            return
        skew = self._skew(t, dev)
        ts = self.ts(t) + skew
        entry = reading(ts, dev.next_seq(), dict(values))
        if within(self.plan.outages.get((reg.enterprise, reg.site), []), t):
            dev.buffer.append(entry)
            return
        reason = "bad_timestamp" if skew > MAX_FUTURE_SKEW_MS else None
        msg = Message(
            t,
            reg.topic(),
            encode(entry),
            reg.enterprise,
            reg.device,
            (ts,),
            reason=reason,
            note="clock_skew" if skew else "",
            values=tuple(values.items()),
        )
        self._emit_telemetry(dev, msg)

    def _value(self, t: int, dev: DeviceSim, point: str, sig: PointSignal) -> float:
        mean = sig.mean(self.local_start_ms + t)
        value = sig.clamp(mean + sig.noise())
        key = (dev.reg.enterprise, dev.reg.device, point)
        for profile in self.plan.profiles.get(key, []):
            shaped = profile.value(t, mean)
            if shaped is not None:
                # Keep this reading's own noise on top of the incident's shape.
                value = sig.clamp(shaped + (value - mean))
        if within(self.plan.stuck.get(key, []), t):
            value = dev.stuck_at.setdefault(point, dev.last.get(point, value))
        else:
            dev.stuck_at.pop(point, None)
        dev.last[point] = value
        return value

    def _skew(self, t: int, dev: DeviceSim) -> int:
        for f in self.plan.faults:
            same = f.enterprise == dev.reg.enterprise and f.device == dev.reg.device
            if f.kind == "clock_skew" and same and f.at_ms <= t < f.at_ms + f.for_ms:
                return f.skew_ms
        return 0

    def _seal_activity(self, t: int, dev: DeviceSim) -> None:
        """People and vehicles at an operating mine, busiest at shift changes; nothing at a
        halted one (anything there is an incident of the scenario)."""
        if dev.halted:
            return
        local_h = ((self.local_start_ms + t) // 3_600_000) % 24
        position = dev.reg.tags.get("position", "main_shaft")
        per_hour = 30.0 if local_h in SHIFT_CHANGE_HOURS else 4.0
        kinds = ("person_in", "person_out")
        if position == "vehicle_gate":
            per_hour, kinds = 6.0, ("vehicle_in", "vehicle_out")
        elif position in ("vent_shaft", "dispatch_room"):
            return
        if dev.schedule.random() < per_hour * dev.interval_ms / 3_600_000:
            etype = kinds[dev.schedule.randrange(2)]
            count = dev.schedule.randint(1, 4)
            self._on_event(t, ScheduledEvent(t, dev.reg.enterprise, dev.reg.device, etype, count))

    def _on_event(self, t: int, ev: ScheduledEvent) -> None:
        dev = self._by_key[f"{ev.enterprise}/{ev.device}"]
        ts = self.ts(t)
        payload = encode(event(ts, dev.next_seq(), ev.type, ev.count, ev.attrs))
        self._emit(
            Message(
                t, dev.reg.topic("event"), payload, ev.enterprise, ev.device, (ts,), note=ev.type
            )
        )

    def _on_fault(self, t: int, fault: Fault) -> None:
        dev = self._by_key.get(f"{fault.enterprise}/{fault.device}")
        if fault.kind == "duplicate":
            if dev is not None and dev.last_message is not None:
                last = dev.last_message
                self._emit(
                    Message(
                        t,
                        last.topic,
                        last.payload,
                        last.enterprise,
                        last.device,
                        last.ts,
                        reason=last.reason,
                        note="duplicate",
                    )
                )
            return
        if fault.kind == "out_of_order":
            if dev is not None:
                dev.hold_next = True
            return
        if fault.kind == "clock_skew":
            return  # applied per tick by `_skew`
        seq = dev.next_seq() if dev is not None else fault.variant + 1
        self._emit(
            faults.build(
                t, self.ts(t), fault, dev.reg if dev else None, seq, dev.last if dev else {}
            )
        )

    def _emit_telemetry(self, dev: DeviceSim, msg: Message) -> None:
        if dev.hold_next:
            dev.hold_next, dev.held = False, msg
            return
        self._emit(msg)
        dev.last_message = msg
        if dev.held is not None:
            held, dev.held = dev.held, None
            self._emit(
                Message(
                    msg.at_ms,
                    held.topic,
                    held.payload,
                    held.enterprise,
                    held.device,
                    held.ts,
                    reason=held.reason,
                    note="out_of_order",
                    values=held.values,
                )
            )

    def _emit(self, msg: Message) -> None:
        self._out.append(msg)
