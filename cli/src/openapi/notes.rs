//! Notes for stderr: what the import had to decide. Each kind of note is listed a few times,
//! then counted, so that a 500-operation document does not print 500 lines.

/// How many notes of one kind are printed in full.
const SHOWN: usize = 5;

/// Notes, grouped by kind in the order kinds first appear.
#[derive(Default)]
pub struct Notes {
    kinds: Vec<(&'static str, Vec<String>)>,
}

impl Notes {
    /// Adds `message` under `kind` (a short summary used when many are left out).
    pub fn add(&mut self, kind: &'static str, message: String) {
        match self.kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, list)) => list.push(message),
            None => self.kinds.push((kind, vec![message])),
        }
    }

    /// The lines to print, without `note: `.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (kind, list) in &self.kinds {
            lines.extend(list.iter().take(SHOWN).cloned());
            if list.len() > SHOWN {
                lines.push(format!("... and {} more: {kind}", list.len() - SHOWN));
            }
        }
        lines
    }
}
