//! A run stopped by a signal (`kill`, Ctrl-C, a closed terminal) stops the processes it
//! started before it exits. The harness stops Envoy, nginx, the upstreams and wrk when their
//! handles drop, which a signal's default action never lets happen: without this, a `kill`
//! of `bench-envoy` left its Envoys running and holding their ports.

use std::io::Write as _;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use scopegate_tests::harness::{children_of, running, signal};

/// The write end of the pipe the signal handler writes to.
static SIGNALLED: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(number: libc::c_int) {
    let byte = number as u8;
    // SAFETY: write(2) is async-signal-safe, and the pipe stays open for the process's life.
    unsafe {
        libc::write(
            SIGNALLED.load(Ordering::Relaxed),
            (&raw const byte).cast(),
            1,
        )
    };
}

/// Handles SIGINT, SIGTERM and SIGHUP (the handler only writes the signal's number to a pipe)
/// and waits for them on a thread of its own, which stops every child process and exits with
/// 128 + the signal. A handler, not a blocked mask that `sigwait` reads: the children
/// started with that mask (measured with Rust 1.95: `SigBlk: 4003` in Envoy and wrk), while
/// exec resets a handler to the default.
pub fn stop_children_on_signals() {
    let mut pipe = [-1; 2];
    // SAFETY: `pipe` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        eprintln!("bench: no pipe for signals: a signal will leave its processes running");
        return;
    }
    SIGNALLED.store(pipe[1], Ordering::Relaxed);
    for number in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed `sigaction` is valid (empty mask, no flags); `on_signal` has the
        // signature a handler without SA_SIGINFO needs.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(number, &action, std::ptr::null_mut());
        }
    }
    let read_end = pipe[0];
    thread::spawn(move || {
        let mut number = 0u8;
        // SAFETY: `read_end` is the pipe's open read end; one byte is read into `number`.
        if unsafe { libc::read(read_end, (&raw mut number).cast(), 1) } != 1 {
            return;
        }
        // Not `eprintln!`, which panics when stderr is gone (a closed terminal, a killed
        // `tee`), and the children would be left running.
        let _ = writeln!(
            std::io::stderr(),
            "bench: signal {number}: stopping the processes it started"
        );
        stop_children();
        std::process::exit(128 + i32::from(number));
    });
}

/// TERM to every child (nginx's master takes its workers down), then KILL to the children
/// and their own children that are there after two seconds. Both rounds read the children
/// anew: the main thread runs on meanwhile and may start another (the next setup, wrk), and
/// a PID read now is still this process's child (an exited one stays a zombie until this
/// process ends), so no reused PID gets the signal.
fn stop_children() {
    let me = std::process::id();
    for pid in children_of(me) {
        signal(pid, "-TERM");
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && children_of(me).into_iter().any(running) {
        thread::sleep(Duration::from_millis(50));
    }
    for child in children_of(me).into_iter().filter(|&pid| running(pid)) {
        for grandchild in children_of(child) {
            signal(grandchild, "-KILL");
        }
        signal(child, "-KILL");
    }
}
