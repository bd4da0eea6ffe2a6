"""The explorer's web application: one page, its static files, and a websocket per browser tab.

Starlette serves GET / (the page) and /static/... (its script, style and the vendored uPlot),
nothing else: no request reads or writes any other file. Each tab opens a websocket to /ws and
gets its own `Tab`, which owns one Session (initlab.serve.session) and the task that trains it.
The page sends JSON messages

    {"type": "settings", "settings": {...}}   check, then start over with these settings
    {"type": "play"} {"type": "pause"} {"type": "step"} {"type": "reset"}

and receives

    {"type": "options", ...}    first, once: the settings' names, defaults and choices
    {"type": "start", ...}      a new experiment: settings, points, the boundary's extent, theory,
                                and whether its first training compiles a kernel first
    {"type": "frame", ...}      the numbers of the current weights (Session.frame), the measured
                                speed, and whether it is playing
    {"type": "error", "message": "..."}   a refused value or a failed run, in words; the
                                experiment as it was goes on

Training and measuring run in a worker thread, so the server keeps answering other tabs while
one trains. Play trains in slices sized to the `epochs_per_second` setting, capped so that a
slice and its measuring fit in a frame at MIN_FPS, or trains as long as the measuring takes if
that is longer (many seeds or big networks then train slower rather than stall the page; a
single epoch longer than that is still one frame). A tab that goes
away cancels its task; its session is dropped.
"""

import asyncio
import json
import logging
import math
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import FileResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect

from initlab.serve.session import Session
from initlab.serve.settings import (
    DATASETS,
    FIELDS,
    HIDDEN_ACTIVATIONS,
    OPTIMIZERS,
    Settings,
    parse_settings,
)
from initlab.studies.schemes import available_schemes

STATIC = Path(__file__).parent / "static"
TARGET_FPS = 20
MIN_FPS = 12  # play never trains so long per frame that fewer frames come
MIN_TRAINING = 0.01  # seconds of training a frame may always take
CATCH_UP = 0.25  # seconds of owed epochs that play may catch up after slow frames
MAX_MESSAGE = 64 * 1024  # bytes: a settings message is well under 1 KB
MAX_TABS = 8  # tabs served at once, each with its own experiment
COMMANDS = ("settings", "play", "pause", "step", "reset")
# The page's policy: its own script, style and websocket only; images from canvases (data: URLs).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

log = logging.getLogger("initlab.serve")


class TabGone(Exception):
    """The tab closed its connection while the server was sending to it."""


class Tab:
    """One browser tab: its session, the task that plays it, and the measured speed."""

    def __init__(self, send):
        self._send_json = send  # async callable taking a JSON-ready dict
        self.session = None
        self.settings = None
        self.task = None
        self.lock = asyncio.Lock()  # one computation on the session at a time
        self.stopping = asyncio.Event()  # set to end play after the current frame
        self.frame_times = []  # (time, epoch) of the frames of the last second
        self.seconds_per_epoch = None  # the last slice's training time per epoch
        self.seconds_per_frame = 0.0  # and its measuring time (Session.frame)

    @property
    def playing(self):
        return self.task is not None and not self.task.done()

    async def handle(self, text):
        """Act on one message from the page; a bad one gets an error message, nothing else."""
        try:
            message = _decode(text)
        except ValueError as error:
            await self.error(str(error))
            return
        try:
            await self._dispatch(message["type"], message)
        except TabGone:
            raise
        except Exception as error:  # a bug must reach the page as words, not end the tab
            log.exception("message %r failed", message["type"])
            await self.error(
                f"the server failed on {message['type']}: {type(error).__name__}: {error}"
            )

    async def _dispatch(self, kind, message):
        if kind == "settings":
            await self.change(message.get("settings"))
        elif self.session is None:
            await self.error("no experiment yet: the settings were refused; correct them first")
        elif kind == "play":
            if self.session.finished:
                await self.error(
                    f"training reached max_epochs ({self.settings.max_epochs}): "
                    f"reset, or raise max epochs, to train again"
                )
            self.play()
        elif kind == "pause":
            if self.playing:
                await self.stop()  # the play's last frame says it is paused
            else:
                await self.send_frame()
        elif kind == "step":
            await self.stop()
            await self.advance(1)
        elif kind == "reset":
            await self.change({})

    async def change(self, values):
        """Check the settings, then start over with them (paused); refused ones change nothing."""
        try:
            settings = parse_settings(values, base=self.settings)
        except ValueError as error:
            await self.error(str(error))
            return
        await self.stop()
        async with self.lock:
            try:
                session = await asyncio.to_thread(Session, settings)
            except (ValueError, FloatingPointError) as error:
                await self.error(f"these settings cannot start: {error}")
                return
            self.session, self.settings = session, settings
            self.frame_times = []
            self.seconds_per_epoch = None  # measured anew for the new models
            await self.send({"type": "start", **session.start()})
        await self.send_frame()

    def play(self):
        if not self.playing and not self.session.finished:
            self.stopping.clear()
            self.task = asyncio.create_task(self.run())

    async def stop(self):
        """Stop playing; returns once the current slice and its frame are done."""
        if self.playing:
            self.stopping.set()
            await self.task
        self.task = None

    async def close(self):
        """The tab went away: end its training now and drop its session."""
        if self.playing:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        self.task = self.session = None

    async def run(self):
        """Train and send frames until paused, finished or gone (see the module docstring)."""
        rate = self.settings.epochs_per_second
        interval = max(1 / TARGET_FPS, 1 / rate)
        owed, last = 0.0, time.perf_counter()
        try:
            while not self.session.finished and not self.stopping.is_set():
                began = time.perf_counter()
                # Epochs owed at the chosen rate, at most CATCH_UP seconds' worth after slow
                # frames. A slice trains at most what fits, by the speeds measured on the last
                # slice, into a frame at MIN_FPS beside the measuring (the first slice is one
                # epoch, to measure them).
                owed = min(owed + rate * (began - last), max(1.0, rate * CATCH_UP))
                last = began
                epochs = math.floor(owed)
                if self.seconds_per_epoch is None:
                    epochs = min(epochs, 1)
                else:
                    # At least as long as the measuring, so that slow frames (many seeds on
                    # a busy machine) still leave half the time to training.
                    budget = max(
                        MIN_TRAINING, self.seconds_per_frame, 1 / MIN_FPS - self.seconds_per_frame
                    )
                    epochs = min(epochs, max(1, int(budget / self.seconds_per_epoch)))
                if epochs >= 1:
                    owed -= epochs
                    await self.advance(epochs)
                rest = interval - (time.perf_counter() - began)
                if rest > 0:
                    try:
                        await asyncio.wait_for(self.stopping.wait(), rest)
                    except TimeoutError:
                        pass
        except TabGone:
            return  # the tab went away between frames: nothing to tell
        except Exception as error:  # a run that fails tells the page, not only the log
            log.exception("training failed")
            await self.error(f"training stopped: {type(error).__name__}: {error}")
            return
        # Paused or finished: the last frame says it no longer plays.
        async with self.lock:
            frame = await asyncio.to_thread(self.session.frame)
        await self._send_frame(frame, playing=False)

    async def advance(self, epochs):
        """Train `epochs` epochs and send the frame; note the seconds per epoch and per frame."""
        async with self.lock:
            # Shielded: a cancel (the tab gone) waits for the thread's slice to finish,
            # so no two threads ever work on one session.
            work = asyncio.ensure_future(asyncio.to_thread(self._train_and_measure, epochs))
            try:
                frame = await asyncio.shield(work)
            except asyncio.CancelledError:
                await work
                raise
        await self._send_frame(frame)

    def _train_and_measure(self, epochs):
        began = time.perf_counter()
        trained = self.session.train(epochs)
        middle = time.perf_counter()
        frame = self.session.frame()
        if trained:
            self.seconds_per_epoch = (middle - began) / trained
        self.seconds_per_frame = time.perf_counter() - middle
        return frame

    async def send_frame(self):
        async with self.lock:
            frame = await asyncio.to_thread(self.session.frame)
        await self._send_frame(frame)

    async def _send_frame(self, frame, playing=None):
        now = time.perf_counter()
        self.frame_times = [(t, e) for t, e in self.frame_times if now - t <= 1.0]
        self.frame_times.append((now, frame["epoch"]))
        playing = self.playing if playing is None else playing
        await self.send(
            {"type": "frame", **frame, "playing": playing, "speed": _speed(self.frame_times)}
        )

    async def error(self, message):
        await self.send({"type": "error", "message": message})

    async def send(self, message):
        try:
            await self._send_json(message)
        except (WebSocketDisconnect, RuntimeError) as error:  # Starlette's "already closed"
            raise TabGone from error


def _speed(frame_times):
    """Frames and epochs per second over the frames of the last second (None until two)."""
    if len(frame_times) < 2:
        return {"fps": None, "epochs_per_second": None}
    (t0, e0), (t1, e1) = frame_times[0], frame_times[-1]
    if t1 <= t0:
        return {"fps": None, "epochs_per_second": None}
    return {"fps": (len(frame_times) - 1) / (t1 - t0), "epochs_per_second": (e1 - e0) / (t1 - t0)}


def _decode(text):
    """One message from the page as a dict with a known "type"; ValueError in words otherwise."""
    if text is None or len(text) > MAX_MESSAGE:
        raise ValueError(f"a message must be JSON text of at most {MAX_MESSAGE} bytes")
    try:
        message = json.loads(text)
    except ValueError:
        raise ValueError('a message must be JSON, e.g. {"type": "play"}') from None
    if not isinstance(message, dict) or message.get("type") not in COMMANDS:
        raise ValueError(f"a message must be an object whose type is one of {list(COMMANDS)}")
    return message


def options():
    """The first message to a page: the settings' names, defaults and choices."""
    return {
        "type": "options",
        "fields": list(FIELDS),
        "defaults": Settings().as_dict(),
        "activations": list(HIDDEN_ACTIVATIONS),
        "schemes": available_schemes(),
        "optimizers": list(OPTIMIZERS),
        "datasets": list(DATASETS),
    }


async def page(request):
    return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)


async def explorer_socket(websocket):
    if not _same_origin(websocket):
        # Another site's page in the user's browser may not drive this server.
        await websocket.close(code=1008)
        return
    await websocket.accept()
    tabs = websocket.app.state.tabs
    if len(tabs) >= MAX_TABS:
        # Each tab holds its own models (up to about 1 GB): their number is bounded too.
        await websocket.send_json(
            {
                "type": "error",
                "message": f"{MAX_TABS} tabs are open on "
                f"this server, its limit: close one, then reload this page",
            }
        )
        await websocket.close(code=1013)
        return
    await websocket.send_json(options())
    tab = Tab(websocket.send_json)
    tabs.add(tab)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            await tab.handle(message.get("text"))
    except (WebSocketDisconnect, TabGone):
        pass
    finally:
        try:
            await tab.close()
        finally:
            tabs.discard(tab)


def _same_origin(websocket):
    """Whether the websocket comes from this server's own page (or from no page at all)."""
    origin = websocket.headers.get("origin")
    if origin is None:  # not a browser page: a test client, a script on this machine
        return True
    host = websocket.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


# The names of this computer a browser uses to reach a server on a loopback address.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def create_app(hosts=LOOPBACK_HOSTS):
    """The Starlette application, answering requests whose Host header names one of `hosts`
    (without the port; "*" for any) and refusing others with 400; app.state.tabs holds the open
    tabs. A page of another site can point a name of its own at 127.0.0.1 ("DNS rebinding") and
    then passes as the server's own origin: the Host header it sends gives it away."""
    app = Starlette(
        routes=[
            Route("/", page),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
            WebSocketRoute("/ws", explorer_socket),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))],
    )
    app.state.tabs = set()
    return app
