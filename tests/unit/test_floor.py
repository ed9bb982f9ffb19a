"""The floor under virtual time: scripted speech, no sleeping."""

from __future__ import annotations

from server.floor import Floor, FloorState


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def speak(floor: Floor, clock: VirtualClock, who: str, seconds: float, step: float = 0.1) -> None:
    """`who` talks for `seconds`, the floor ticking as it would in a room."""
    for _ in range(round(seconds / step)):
        floor.voice(who)
        floor.tick()
        clock.advance(step)


def silence(floor: Floor, clock: VirtualClock, seconds: float, step: float = 0.1) -> None:
    for _ in range(round(seconds / step)):
        floor.tick()
        clock.advance(step)


def new_floor() -> tuple[Floor, VirtualClock]:
    clock = VirtualClock()
    return Floor(release_after_s=1.5, clock=clock), clock


def test_first_voice_takes_the_floor_and_others_queue_in_order() -> None:
    floor, clock = new_floor()
    speak(floor, clock, "ana", 0.5)
    speak(floor, clock, "ben", 0.3)
    speak(floor, clock, "cai", 0.3)
    speak(floor, clock, "ben", 0.3)
    assert floor.state == FloorState("ana", ("ben", "cai"))


def test_floor_passes_after_the_holder_is_silent_long_enough() -> None:
    floor, clock = new_floor()
    speak(floor, clock, "ana", 1.0)
    speak(floor, clock, "ben", 0.2)
    silence(floor, clock, 1.0)
    assert floor.holder == "ana"  # a pause shorter than 1.5 s keeps the floor
    speak(floor, clock, "ana", 0.5)
    silence(floor, clock, 1.6)
    assert floor.state == FloorState("ben", ())
    silence(floor, clock, 1.4)
    assert floor.holder == "ben"  # the new holder's wait in the queue did not count as silence
    silence(floor, clock, 0.2)
    assert floor.state == FloorState(None, ())


def test_explicit_request_holds_until_released() -> None:
    floor, clock = new_floor()
    floor.request("ana")
    silence(floor, clock, 10.0)
    assert floor.holder == "ana"
    floor.request("ben")
    assert floor.queue == ["ben"]
    assert floor.release("ana")
    assert floor.state == FloorState("ben", ())


def test_release_from_the_queue_and_leaving() -> None:
    floor, clock = new_floor()
    speak(floor, clock, "ana", 0.2)
    speak(floor, clock, "ben", 0.2)
    speak(floor, clock, "cai", 0.2)
    assert floor.release("ben")
    assert floor.state == FloorState("ana", ("cai",))
    assert floor.remove("ana")
    assert floor.state == FloorState("cai", ())
    assert not floor.release("nobody")


def test_move_to_back() -> None:
    floor, clock = new_floor()
    for who in ("ana", "ben", "cai", "dan"):
        speak(floor, clock, who, 0.1)
    assert floor.move_to_back("ben")
    assert floor.queue == ["cai", "dan", "ben"]
    assert floor.move_to_back("ana")  # a moderator moves the holder: the next one speaks
    assert floor.state == FloorState("cai", ("dan", "ben", "ana"))
    assert not floor.move_to_back("nobody")
    alone, clock = new_floor()
    speak(alone, clock, "eve", 0.1)
    assert not alone.move_to_back("eve")  # nobody waits: nothing to move behind


def test_tick_reports_changes_only_when_they_happen() -> None:
    floor, clock = new_floor()
    assert floor.voice("ana")
    assert not floor.voice("ana")
    clock.advance(1.0)
    assert not floor.tick()
    clock.advance(0.6)
    assert floor.tick()
    assert not floor.tick()
