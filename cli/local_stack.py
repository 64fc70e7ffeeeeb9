"""`reelcast up` and `reelcast down`: the whole local stack in the background.

`up` starts a Prefect server (SQLite, 127.0.0.1), makes sure the `reelcast` process work
pool exists, deploys everything in prefect.yaml, and starts a worker for the pool and the
tracking app. Each process writes its log and PID file into <workspace>/run/; `down`
stops what those PID files name. Both can be run again at any time (POSIX only).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from cli.common import fail
from retail.errors import ReelcastError

POOL = "reelcast"
HOST = "127.0.0.1"

console = Console()
err = Console(stderr=True)


class StackError(ReelcastError):
    """Something the operator can fix (busy port, missing prefect.yaml, a failed start)."""


@dataclass(frozen=True)
class Service:
    """One background process of the stack, known by its PID file."""

    name: str
    label: str
    marker: str  # a word of its command line, so a recycled PID is not mistaken for it

    def pid_file(self, run_dir: Path) -> Path:
        return run_dir / f"{self.name}.pid"

    def log_file(self, run_dir: Path) -> Path:
        return run_dir / f"{self.name}.log"


SERVER = Service("prefect-server", "Prefect server", "prefect")
WORKER = Service("worker", "Prefect worker", "worker")
TRACKING = Service("tracking", "tracking app", "track")
SERVICES = (SERVER, WORKER, TRACKING)


ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        help="The reelcast folder that holds prefect.yaml; workers run the flows there "
        "(default: REELCAST_HOME, else the current folder, else where reelcast is installed).",
        show_default=False,
    ),
]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        help="Workspace folder; run/ in it holds the logs and PID files "
        "(default: REELCAST_WORKSPACE, else <project>/.reelcast).",
        show_default=False,
    ),
]


def up(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Prefect server port.")] = 4200,
    tracking_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Tracking app port (email links).")
    ] = 8010,
    project: ProjectOpt = None,
    workspace: WorkspaceOpt = None,
    demo_data: Annotated[
        bool,
        typer.Option(
            "--demo-data/--no-demo-data",
            help="Write the demo retailer's files into the workspace if they are missing "
            "(the deployments' default parameters point at them).",
        ),
    ] = True,
) -> None:
    """Start Prefect (server, work pool, deployments, worker) and the tracking app.

    Everything runs in the background on 127.0.0.1; logs and PID files go to
    <workspace>/run/. Running it again starts only what is not running and deploys again.
    Stop everything with `reelcast down`.
    """
    try:
        home, ws = _locate(project, workspace)
        _start_stack(home, ws, port, tracking_port, demo_data)
    except StackError as exc:
        raise fail(str(exc), 1) from None


def down(project: ProjectOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Stop what `reelcast up` started (worker and its flow runs, tracking app, server)."""
    try:
        _, ws = _locate(project, workspace, need_yaml=False)
    except StackError as exc:
        raise fail(str(exc), 1) from None
    run_dir = ws / "run"
    stopped = 0
    for service in reversed(SERVICES):
        pid = running_pid(service, run_dir)
        if pid is None:
            continue
        stop_process_tree(pid)
        service.pid_file(run_dir).unlink(missing_ok=True)
        console.print(f"stopped the {service.label} (pid {pid})")
        stopped += 1
    if not stopped:
        console.print(f"nothing to stop: no process of `reelcast up` is running ({run_dir})")


def _start_stack(home: Path, ws: Path, port: int, tracking_port: int, demo_data: bool) -> None:
    run_dir = ws / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://{HOST}:{port}"
    api = f"{url}/api"

    server_pid = running_pid(SERVER, run_dir)
    tracking_pid = running_pid(TRACKING, run_dir)
    # Check both ports before starting anything, so a busy port leaves nothing half-started.
    foreign_prefect = False
    if server_pid is None and port_in_use(port):
        if not is_prefect_healthy(api):
            raise StackError(
                f"port {port} is in use by another program: stop it, or pass --port to use "
                "another port for the Prefect server"
            )
        foreign_prefect = True
    if tracking_pid is None and port_in_use(tracking_port):
        raise StackError(
            f"port {tracking_port} is in use by another program: stop it, or pass "
            "--tracking-port (and set REELCAST_PUBLIC_BASE_URL to match)"
        )

    if demo_data:
        _ensure_demo_data(ws)
    if ws != home / ".reelcast":
        console.print(
            f"note: the deployments' default data paths point at {home}/.reelcast/demo-data; "
            f"this stack's workspace is {ws} (edit the parameters in prefect.yaml or the UI)"
        )

    if server_pid is not None:
        console.print(f"Prefect server already running (pid {server_pid}) at {url}")
    elif foreign_prefect:
        console.print(
            f"A Prefect server that `reelcast up` did not start answers at {url}: using it "
            "(`reelcast down` will not stop it)"
        )
    else:
        with console.status(f"Starting the Prefect server on {url}…"):
            pid = start_background(
                SERVER,
                run_dir,
                prefect_cli("server", "start", "--host", HOST, "--port", str(port)),
                env=server_env(port, ws),
                cwd=ws,
            )
            wait_for_prefect(api, pid, SERVER.log_file(run_dir), timeout_s=120)
        console.print(f"Prefect server started (pid {pid}) at {url}")

    with console.status(f"Work pool '{POOL}'…"):
        created = ensure_work_pool(api)
    console.print(f"work pool '{POOL}' (process) {'created' if created else 'exists'}")

    with console.status("Deploying everything in prefect.yaml…"):
        deploy_all(home, api, run_dir / "deploy.log")
    console.print(f"deployed: {', '.join(deployment_names(home / 'prefect.yaml'))}")

    flow_env = {
        "PREFECT_API_URL": api,
        "PREFECT_WORKER_WEBSERVER_HOST": HOST,
        "REELCAST_HOME": str(home),
        "REELCAST_WORKSPACE": str(ws),
    }
    if tracking_port != 8010 and "REELCAST_PUBLIC_BASE_URL" not in os.environ:
        flow_env["REELCAST_PUBLIC_BASE_URL"] = f"http://{HOST}:{tracking_port}"
    worker_pid = running_pid(WORKER, run_dir)
    if worker_pid is not None:
        console.print(f"worker already running (pid {worker_pid})")
    else:
        worker_pid = start_background(
            WORKER,
            run_dir,
            prefect_cli("worker", "start", "--pool", POOL),
            env=child_env(flow_env),
            cwd=home,
        )
        console.print(f"worker for pool '{POOL}' started (pid {worker_pid})")

    if tracking_pid is not None:
        console.print(f"tracking app already running (pid {tracking_pid})")
    else:
        tracking_pid = start_background(
            TRACKING,
            run_dir,
            [sys.executable, "-m", "cli.main", "track", "serve", "--port", str(tracking_port)],
            env=child_env(flow_env),
            cwd=home,
        )
        console.print(f"tracking app started (pid {tracking_pid}) on http://{HOST}:{tracking_port}")

    time.sleep(1.5)  # a process that cannot start usually dies within a second
    for service in (WORKER, TRACKING):
        if running_pid(service, run_dir) is None:
            raise StackError(
                f"the {service.label} stopped right after starting; its log "
                f"{service.log_file(run_dir)} ends with:\n{log_tail(service.log_file(run_dir))}"
            )

    console.print()
    console.print(f"[bold]reelcast is up.[/bold]  Prefect UI: [link={url}]{url}[/link]")
    console.print(
        "  Run a campaign: UI → Deployments → campaign → Run → Custom run (edit the form).\n"
        "  It pauses for approval after its checks: open the run, look at the preview\n"
        "  gallery (Artifacts), then Resume and approve or reject.\n"
        "  Schedules: retrain nightly, dispatch every 5 minutes, report daily, the weekly\n"
        "  campaign off until you switch it on (Deployments → campaign → Schedules).\n"
        f"  From a terminal: export PREFECT_API_URL={api}\n"
        "                  prefect deployment run campaign/campaign\n"
        f"  Logs and PID files: {run_dir}/\n"
        "  Stop everything: reelcast down"
    )


def _locate(
    project: Path | None, workspace: Path | None, *, need_yaml: bool = True
) -> tuple[Path, Path]:
    """(project folder, workspace folder), both absolute."""
    from runtime.settings import REPO_ROOT

    if project is None and os.environ.get("REELCAST_HOME"):
        project = Path(os.environ["REELCAST_HOME"])
    if project is None:
        project = next(
            (p for p in (Path.cwd(), REPO_ROOT) if (p / "prefect.yaml").is_file()), Path.cwd()
        )
    project = project.expanduser().resolve()
    if need_yaml and not (project / "prefect.yaml").is_file():
        raise StackError(
            f"no prefect.yaml in {project}: run this in the reelcast folder, or pass --project "
            "(or set REELCAST_HOME)"
        )
    if workspace is None and os.environ.get("REELCAST_WORKSPACE"):
        workspace = Path(os.environ["REELCAST_WORKSPACE"])
    ws = (workspace.expanduser() if workspace else project / ".reelcast").resolve()
    return project, ws


def _ensure_demo_data(ws: Path) -> None:
    from retail.demo import generate_retailer
    from runtime.workspace import Workspace

    folder = Workspace(ws).create().demo_data
    if (folder / "catalog.csv").is_file():
        return
    with console.status("Writing the demo retailer (the deployments' default data)…"):
        generate_retailer(folder)
    console.print(f"demo retailer written to {folder}/")


# -- processes ---------------------------------------------------------------------------


def prefect_cli(*args: str) -> list[str]:
    """The `prefect` command of this Python environment."""
    return [sys.executable, "-m", "prefect", *args]


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child process: ours, no telemetry, plus `extra`."""
    env = dict(os.environ)
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"})
    env.update(extra)
    return env


def server_env(port: int, ws: Path) -> dict[str, str]:
    """A Prefect server's environment: its UI talks to this port; SQLite in the workspace.

    An operator's PREFECT_SERVER_DATABASE_CONNECTION_URL (PostgreSQL) wins.
    """
    extra = {"PREFECT_UI_API_URL": f"http://{HOST}:{port}/api"}
    if "PREFECT_SERVER_DATABASE_CONNECTION_URL" not in os.environ:
        extra["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{ws / 'prefect.db'}"
    return child_env(extra)


def start_background(
    service: Service, run_dir: Path, argv: list[str], *, env: Mapping[str, str], cwd: Path
) -> int:
    """Start `argv` detached (its own session), logging to run/<name>.log; returns its PID."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with service.log_file(run_dir).open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
    service.pid_file(run_dir).write_text(f"{process.pid}\n")
    return process.pid


def running_pid(service: Service, run_dir: Path) -> int | None:
    """The PID in the service's PID file if that process still runs; removes a stale file."""
    path = service.pid_file(run_dir)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return None
    if _alive(pid) and service.marker in _cmdline(pid, default=service.marker):
        return pid
    path.unlink(missing_ok=True)
    return None


def stop_process_tree(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM the process, its process group and every descendant; SIGKILL what is left.

    Descendants matter: a worker starts each flow run in a session of its own.
    """
    targets = {pid, *_descendants(pid)}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for target in targets:
            try:
                if target == pid:
                    os.killpg(target, sig)  # the session leader: its whole group
                else:
                    os.kill(target, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + (timeout_s if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            targets = {t for t in targets if _alive(t)}
            if not targets:
                return
            time.sleep(0.2)
    _reap(pid)


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(pid, 0) is all we know
    return state != "Z"  # a zombie has exited


def _reap(pid: int) -> None:
    """Collect our own exited child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _cmdline(pid: int, default: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return default  # no /proc (macOS): trust the PID file


def _descendants(pid: int) -> list[int]:
    """Every descendant of `pid` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, indented."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "  (no log)"
    return "\n".join(f"  {line}" for line in text)


# -- Prefect -----------------------------------------------------------------------------


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def is_prefect_healthy(api_url: str) -> bool:
    """True when a Prefect server answers /health at this API URL."""
    try:
        response = httpx.get(f"{api_url}/health", timeout=2.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.text.strip() == "true"


def wait_for_prefect(api_url: str, pid: int, log: Path, timeout_s: float = 120) -> None:
    """Wait until the server answers /health; StackError if it dies or takes too long."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_prefect_healthy(api_url):
            return
        if not _alive(pid):
            raise StackError(
                f"the Prefect server stopped while starting; {log} ends with:\n{log_tail(log)}"
            )
        time.sleep(0.5)
    raise StackError(f"the Prefect server did not answer within {timeout_s:.0f} s; see {log}")


def ensure_work_pool(api_url: str, name: str = POOL) -> bool:
    """Create the process work pool `name` unless it exists; True when created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.workers.process import ProcessWorker

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            pass
        client.create_work_pool(
            WorkPoolCreate(
                name=name,
                type="process",
                base_job_template=ProcessWorker.get_default_base_job_template(),
                description="reelcast flows, run as local processes by `prefect worker start`",
            )
        )
        return True


def deployment_names(prefect_yaml: Path) -> list[str]:
    """The deployment names in a prefect.yaml."""
    import yaml

    spec = yaml.safe_load(prefect_yaml.read_text()) or {}
    return [str(d.get("name")) for d in spec.get("deployments") or []]


def deploy_all(project: Path, api_url: str, log: Path, *names: str) -> None:
    """`prefect deploy` (every deployment, or the named ones) without questions."""
    selection = [arg for n in names for arg in ("--name", n)] or ["--all"]
    with log.open("wb") as out:
        result = subprocess.run(
            prefect_cli("--no-prompt", "deploy", *selection),
            cwd=project,
            env=child_env({"PREFECT_API_URL": api_url}),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    if result.returncode != 0:
        raise StackError(f"`prefect deploy` failed; {log} ends with:\n{log_tail(log)}")
