//! The registry on disk: `contracts/<partner>/<tenant>/bundle.toml`, one directory per tenant.

use std::path::{Path, PathBuf};

use super::bundle::{Bundle, BundleError};

/// A partner × tenant found in the registry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TenantRef {
    pub partner: String,
    pub tenant: String,
    pub dir: PathBuf,
}

impl TenantRef {
    pub fn label(&self) -> String {
        format!("{}/{}", self.partner, self.tenant)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("contracts directory {0} not found")]
    Missing(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no tenant matches {filter} in {dir} (known: {known})")]
    NoMatch {
        filter: String,
        dir: PathBuf,
        known: String,
    },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("{path}: declares {declared} but lives in {directory}; move it or fix `partner`/`tenant`", path = .path.display())]
    Misplaced {
        path: PathBuf,
        declared: String,
        directory: String,
    },
}

/// The example or team registry rooted at a `contracts/` directory.
#[derive(Clone, Debug)]
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    pub fn open(root: &Path) -> Result<Self, RegistryError> {
        if !root.is_dir() {
            return Err(RegistryError::Missing(root.to_path_buf()));
        }
        Ok(Registry {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every tenant, sorted by partner then tenant.
    pub fn tenants(&self) -> Result<Vec<TenantRef>, RegistryError> {
        let mut out = Vec::new();
        for partner in sorted_dirs(&self.root)? {
            for tenant in sorted_dirs(&partner)? {
                if tenant.join("bundle.toml").is_file() {
                    out.push(TenantRef {
                        partner: file_name(&partner),
                        tenant: file_name(&tenant),
                        dir: tenant,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Tenants matching the filters (empty filter = all); an unmatched filter is an error.
    pub fn select(
        &self,
        partners: &[String],
        tenants: &[String],
    ) -> Result<Vec<TenantRef>, RegistryError> {
        let all = self.tenants()?;
        let chosen: Vec<TenantRef> = all
            .iter()
            .filter(|t| partners.is_empty() || partners.contains(&t.partner))
            .filter(|t| tenants.is_empty() || tenants.contains(&t.tenant))
            .cloned()
            .collect();
        if chosen.is_empty() {
            let filter = format!("--partner {:?} --tenant {:?}", partners, tenants);
            let known = all
                .iter()
                .map(TenantRef::label)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(RegistryError::NoMatch {
                filter,
                dir: self.root.clone(),
                known,
            });
        }
        Ok(chosen)
    }

    /// Loads a tenant's bundle; its `partner` and `tenant` must match the directories it is in.
    pub fn load(&self, tenant: &TenantRef) -> Result<Bundle, RegistryError> {
        let bundle = Bundle::load(&tenant.dir)?;
        if bundle.partner != tenant.partner || bundle.tenant != tenant.tenant {
            return Err(RegistryError::Misplaced {
                path: tenant.dir.join("bundle.toml"),
                declared: format!("{}/{}", bundle.partner, bundle.tenant),
                directory: tenant.label(),
            });
        }
        Ok(bundle)
    }
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>, RegistryError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RegistryError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !file_name(p).starts_with('.') && file_name(p) != "schema")
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
