//! Contracts: the bundle model and its loading, the record rules every Salesforce org
//! enforces, the registry of partners and tenants on disk, breaking-change rules between
//! bundle versions, and can-i-deploy over the store's index.

pub mod bundle;
pub mod describe;
pub mod diagnostic;
pub mod diff;
pub mod json_value;
pub mod matrix;
pub mod pacts;
pub mod publish;
pub mod pull;
pub mod registry;
pub mod rules;
pub mod soql;

pub use bundle::{
    Bundle, BundleError, DeletePolicy, FieldSpec, FieldType, Limits, ObjectSpec, Owner,
    PartnerKind, ValidationRule,
};
pub use registry::{Registry, RegistryError, TenantRef};
