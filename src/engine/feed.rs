//! Where a run's changes come from: a directory of change files, source tables with
//! cursors, or a fixed set (the gate's fixtures). A feed hands out changes not committed
//! yet and commits them once the engine has applied (or dead-lettered) them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::source::SourceSet;
use super::table_source::{Pull, TableSource};
use crate::contract::Bundle;
use crate::store::CheckpointStore;

/// A source as the runner reads it.
pub enum Feed {
    /// Re-read on every tick; only versions above the highest settled earlier in this
    /// process are sent (across restarts, the dedupe store skips applied ones). A stale
    /// version appended late never overwrites a newer one.
    Dir {
        path: PathBuf,
        settled: HashMap<(String, String), u64>,
    },
    /// Source tables, read page by page from the stored cursors.
    Tables(TableSource),
    /// A set known in advance, handed out once (the gate's fixtures), shared with the
    /// caller rather than copied (at volume a copy is a large share of a run's memory).
    Fixed { set: Arc<SourceSet>, taken: bool },
}

/// Records pulled from a [`Feed`], not committed yet.
pub struct Pulled {
    pub set: Arc<SourceSet>,
    /// Table cursors to store on commit.
    tables: Option<Pull>,
    /// The feed has more right now (the next page).
    pub more: bool,
}

impl Feed {
    /// A directory of JSONL / CSV change files.
    pub fn dir(path: PathBuf) -> Feed {
        Feed::Dir {
            path,
            settled: HashMap::new(),
        }
    }

    /// A fixed set, handed out on the first pull (again until that pull is committed).
    pub fn fixed(set: impl Into<Arc<SourceSet>>) -> Feed {
        Feed::Fixed {
            set: set.into(),
            taken: false,
        }
    }

    /// The changes not committed yet (at most `page` records per table for tables).
    pub async fn pull(
        &mut self,
        bundle: &Bundle,
        cursors: &dyn CheckpointStore,
        page: usize,
    ) -> Result<Pulled, String> {
        match self {
            Feed::Dir { path, settled } => {
                let mut set = SourceSet::load_dir(path).map_err(|e| e.to_string())?;
                for records in set.entities.values_mut() {
                    records.retain(|r| {
                        settled
                            .get(&(r.entity.clone(), r.id.clone()))
                            .is_none_or(|&done| r.version > done)
                    });
                }
                set.entities.retain(|_, records| !records.is_empty());
                Ok(Pulled {
                    set: Arc::new(set),
                    tables: None,
                    more: false,
                })
            }
            Feed::Tables(tables) => {
                let names: Vec<&str> = bundle
                    .objects_parent_first()
                    .into_iter()
                    .map(|(_, spec)| spec.source.as_str())
                    .collect();
                let mut pull = tables
                    .pull(&names, cursors, page)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Pulled {
                    set: Arc::new(std::mem::take(&mut pull.set)),
                    more: pull.more,
                    tables: Some(pull),
                })
            }
            Feed::Fixed { set, taken } => {
                let set = if *taken {
                    Arc::default()
                } else {
                    Arc::clone(set)
                };
                Ok(Pulled {
                    set,
                    tables: None,
                    more: false,
                })
            }
        }
    }

    /// Marks `pulled` as done: the next pull starts after it.
    pub async fn commit(
        &mut self,
        pulled: &Pulled,
        cursors: &dyn CheckpointStore,
    ) -> Result<(), String> {
        match self {
            Feed::Dir { settled, .. } => {
                for r in pulled.set.entities.values().flatten() {
                    let done = settled.entry((r.entity.clone(), r.id.clone())).or_default();
                    *done = (*done).max(r.version);
                }
                Ok(())
            }
            Feed::Tables(tables) => match &pulled.tables {
                Some(pull) => tables
                    .commit(pull, cursors)
                    .await
                    .map_err(|e| e.to_string()),
                None => Ok(()),
            },
            Feed::Fixed { taken, .. } => {
                *taken = true;
                Ok(())
            }
        }
    }
}
