//! What the end-to-end tests of the runner have in common: a project
//! built by the real binary into a fresh temporary folder, then run, and a
//! run of the binary that is killed (and the test failed) past a bound.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{BIN, TempDir};

/// A project's plan, built into a fresh temporary folder (removed, with the
/// project when it was written by the test, when dropped).
pub struct Built {
    /// The project folder: `relance run` runs there, so the paths in a
    /// test's arguments are the project's own.
    pub project: PathBuf,
    /// The build folder: `plan.json`, `preview/`; also where a test puts
    /// the outbox and the summary of its runs.
    pub out: TempDir,
    /// What the build printed.
    pub build: Ran,
    /// The project's own folder when the test wrote it.
    _written: Option<TempDir>,
}

impl Built {
    /// `relance build . --color never [--now NOW] --out TMP` in `project`,
    /// with the environment `env`; fails the test with the build's report
    /// when it fails.
    pub fn new(project: &Path, now: Option<&str>, env: &[(&str, &str)]) -> Built {
        let out = TempDir::new("build");
        let mut cmd = Command::new(BIN);
        cmd.args(["build", ".", "--color", "never"]);
        if let Some(now) = now {
            cmd.args(["--now", now]);
        }
        cmd.arg("--out").arg(out.path()).current_dir(project);
        for (name, value) in env {
            cmd.env(name, value);
        }
        let build = ran(&mut cmd);
        assert!(
            build.success(),
            "{}: build failed:\n{}",
            project.display(),
            build.stderr
        );
        Built {
            project: project.to_path_buf(),
            out,
            build,
            _written: None,
        }
    }

    /// A project made of `files` (path, text) in a fresh temporary folder,
    /// built at `now`.
    pub fn from_files(tag: &str, files: &[(&str, &str)], now: &str) -> Built {
        let dir = TempDir::new(tag);
        for (path, text) in files {
            dir.write(path, text);
        }
        let mut built = Built::new(dir.path(), Some(now), &[]);
        built._written = Some(dir);
        built
    }

    /// The built plan.
    pub fn plan(&self) -> PathBuf {
        self.out.path().join("plan.json")
    }

    /// A file of the build folder (an outbox, a summary).
    pub fn file(&self, name: &str) -> PathBuf {
        self.out.path().join(name)
    }

    /// `relance` in the project folder, for any subcommand.
    pub fn relance(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&self.project);
        cmd
    }

    /// `relance run --plan PLAN` in the project folder: add the inputs, the
    /// window and the flags.
    pub fn run(&self) -> Command {
        let mut cmd = self.relance();
        cmd.args(["run", "--plan"]).arg(self.plan());
        cmd
    }
}

/// What a run of the binary gave.
pub struct Ran {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// Runs `cmd` to its end.
pub fn ran(cmd: &mut Command) -> Ran {
    let out = cmd.output().expect("run relance");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cmd`, reading its output as it comes; past `bound` the process is
/// killed and the test fails with `what` (a bound on hanging, not a timing
/// assertion: pick one far above the expected time).
pub fn bounded(cmd: &mut Command, bound: Duration, what: &str) -> Ran {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run relance");
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            r.read_to_end(&mut s).ok();
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for relance") {
            break status;
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} (killed after {bound:?})");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        code: status.code().unwrap_or(-1),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}
