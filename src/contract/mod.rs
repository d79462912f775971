//! Contracts: the bundle model and its loading, the record rules every Salesforce org
//! enforces, and the registry of partners and tenants on disk.

pub mod bundle;
pub mod registry;
pub mod rules;

pub use bundle::{
    Bundle, BundleError, DeletePolicy, FieldSpec, FieldType, Limits, ObjectSpec, Owner,
    PartnerKind, ValidationRule,
};
pub use registry::{Registry, RegistryError, TenantRef};
