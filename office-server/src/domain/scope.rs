//! What part of the organisation an account may see.

use crate::storage::{ReportFilter, Role, Scope};

/// The part of the organisation a viewer's pages, downloads, recordings and live events are
/// limited to. Anything outside it is "not found".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    All,
    Department(i64),
    Section(i64),
}

impl Visibility {
    /// What the dashboard shows an account; specialists have no dashboard.
    pub fn of(role: &Role) -> Option<Self> {
        match *role {
            Role::Admin | Role::Observer => Some(Visibility::All),
            Role::Head {
                scope: Scope::Department(id),
            } => Some(Visibility::Department(id)),
            Role::Head {
                scope: Scope::Section(id),
            } => Some(Visibility::Section(id)),
            Role::Specialist { .. } => None,
        }
    }

    /// Whether a visit of this department and section is in view.
    pub fn sees(&self, department_id: i64, section_id: i64) -> bool {
        match *self {
            Visibility::All => true,
            Visibility::Department(id) => id == department_id,
            Visibility::Section(id) => id == section_id,
        }
    }

    /// The filter that keeps a report within view.
    pub fn filter(&self) -> ReportFilter {
        match *self {
            Visibility::All => ReportFilter::default(),
            Visibility::Department(id) => ReportFilter {
                department_id: Some(id),
                ..ReportFilter::default()
            },
            Visibility::Section(id) => ReportFilter {
                section_id: Some(id),
                ..ReportFilter::default()
            },
        }
    }
}

/// Only heads see who a visitor is (the name they attached a visit with), and only in their
/// scope; administrators and observers see `---`.
pub fn may_see_visitor(role: &Role) -> bool {
    matches!(role, Role::Head { .. })
}

/// Heads and administrators decide on Плохо visits and acknowledge alerts; observers only read.
pub fn may_decide(role: &Role) -> bool {
    matches!(role, Role::Admin | Role::Head { .. })
}
