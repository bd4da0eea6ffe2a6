"""Ctrl-C held back over a few steps that must not be cut in half, then delivered.

    with held_interrupt():
        os.replace(a, b)          # a Ctrl-C here waits ...
        os.replace(c, d)
    # ... and is raised here, as if pressed now

Blocking SIGINT in the main thread is not enough on its own: the kernel hands a signal to any
thread that does not block it, and Python then raises KeyboardInterrupt in the main thread. So
the block also swaps in a handler that only notes the signal. The blocked mask is what processes
started inside the block (and by threads started inside it) inherit, through fork and exec: a
child that is still starting when Ctrl-C reaches the terminal's process group gets it only once
it has decided what to do with it. Outside the main thread the block does nothing (Python runs
signal handlers in the main thread only).
"""

import signal
import threading


class held_interrupt:
    """A context in which SIGINT is held back; one that arrived is delivered when it ends."""

    def __enter__(self):
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.caught = False
            self.handler = signal.signal(signal.SIGINT, self._note)
            self.mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        return self

    def _note(self, signum, frame):
        self.caught = True

    def __exit__(self, *exception):
        if self.active:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)  # a pending one is noted here
            signal.signal(signal.SIGINT, signal.SIG_DFL if self.handler is None else self.handler)
            if self.caught:
                signal.raise_signal(signal.SIGINT)  # to the handler the block found
        return False
