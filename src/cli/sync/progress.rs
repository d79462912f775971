//! What `syncgate sync` shows on the terminal while it runs: a progress bar on stderr, or
//! only the engine's notices when there is no terminal (or `--no-progress`).

use std::sync::Arc;

use crate::engine::runner::Watch;
use crate::engine::Progress;

/// A progress bar on stderr (indicatif redraws at most a few times a second).
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Arc<Bar> {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(0),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("[{bar:30}] {pos}/{len} records  {msg}")
        {
            bar.set_style(style.progress_chars("#-"));
        }
        Arc::new(Bar(bar))
    }
}

impl Watch for Bar {
    fn page_started(&self, total: usize) {
        self.0.reset();
        self.0.set_length(total as u64);
    }

    fn settled(&self, p: &Progress) {
        self.0.set_position(p.settled as u64);
        self.0.set_message(p.object.clone());
    }

    fn page_finished(&self) {
        self.0.finish_and_clear();
    }

    fn notice(&self, message: &str) {
        self.0.suspend(|| eprintln!("{message}"));
    }
}

/// No bar (stderr is not a terminal, or `--no-progress`): notices still go to stderr.
struct Notices;

impl Watch for Notices {
    fn page_started(&self, _total: usize) {}
    fn settled(&self, _progress: &Progress) {}
    fn page_finished(&self) {}
    fn notice(&self, message: &str) {
        eprintln!("{message}");
    }
}

/// The watch of a run: the bar when `bar`, else the notices alone.
pub(super) fn watch(bar: bool) -> Arc<dyn Watch> {
    if bar {
        Bar::new()
    } else {
        Arc::new(Notices)
    }
}
