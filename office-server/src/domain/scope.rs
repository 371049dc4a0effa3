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

/// Whose Плохо a reviewer works through: their own scope, or — for a head's deputy — the
/// covered head's scope without the deputy's own visits (nobody judges themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewScope {
    pub visibility: Visibility,
    pub except_employee: Option<i64>,
}

impl ReviewScope {
    /// A reviewer's own scope.
    pub fn own(visibility: Visibility) -> Self {
        Self {
            visibility,
            except_employee: None,
        }
    }

    /// A deputy's cover of a head whose scope is `visibility`.
    pub fn covering(visibility: Visibility, deputy: &Role) -> Self {
        Self {
            visibility,
            except_employee: match *deputy {
                Role::Specialist { employee_id } => Some(employee_id),
                _ => None,
            },
        }
    }

    pub fn sees(&self, department_id: i64, section_id: i64, employee_id: i64) -> bool {
        self.visibility.sees(department_id, section_id) && self.except_employee != Some(employee_id)
    }
}

/// Who may be named a head's deputy in the review: another head, or a specialist.
pub fn may_deputise(role: &Role) -> bool {
    matches!(role, Role::Head { .. } | Role::Specialist { .. })
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
