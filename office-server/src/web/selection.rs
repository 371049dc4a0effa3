//! What a dashboard page is about: a department, section or employee (within what the viewer may
//! see) and the date whose day, week, month, quarter and year the columns show.

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::error::{PageError, PageResult};
use super::percent_encode;
use super::strings::Strings;
use crate::domain::Visibility;
use crate::storage::{Directory, ReportFilter};

/// The query string of dashboard pages. Values are text so that an empty `<select>` choice
/// means "none" rather than a refused request.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PageQuery {
    pub department: Option<String>,
    pub section: Option<String>,
    pub employee: Option<String>,
    pub date: Option<String>,
    /// «без решения» on the Плохо analysis.
    pub undecided: Option<String>,
    pub page: Option<String>,
    /// The table to export.
    pub table: Option<String>,
    /// The tab a table belongs to, for exports.
    pub tab: Option<String>,
    /// What the rows of «Отзывы посетителей» are: employee, section or service.
    pub by: Option<String>,
    /// The Плохо archive's filters: the verdict of record (`undecided`, `correct`, `wrong`),
    /// the recording (`with`, `without`), the first and last day rated (`YYYY-MM-DD`).
    pub verdict: Option<String>,
    pub recording: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The inbox: `oldest` or `newest` first; the visit after which to go on; one visit.
    pub order: Option<String>,
    pub after: Option<String>,
    pub visit: Option<String>,
}

fn id(value: &Option<String>, what: &str) -> PageResult<Option<i64>> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| PageError::bad_request(format!("{what} must be a number"))),
    }
}

impl PageQuery {
    pub fn undecided_only(&self) -> bool {
        matches!(self.undecided.as_deref(), Some("1" | "on" | "true"))
    }

    pub fn page_number(&self) -> u32 {
        self.page
            .as_deref()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Names from the directory, by id.
#[derive(Debug, Clone)]
pub struct Names {
    pub departments: HashMap<i64, String>,
    pub sections: HashMap<i64, (String, i64)>,
    pub employees: HashMap<i64, (String, i64)>,
    pub services: HashMap<i64, String>,
}

impl Names {
    pub fn of(directory: &Directory) -> Self {
        let mut names = Names {
            departments: HashMap::new(),
            sections: HashMap::new(),
            employees: HashMap::new(),
            services: directory
                .services
                .iter()
                .map(|s| (s.id, s.name.clone()))
                .collect(),
        };
        for department in &directory.departments {
            names
                .departments
                .insert(department.id, department.name.clone());
            for section in &department.sections {
                names
                    .sections
                    .insert(section.id, (section.name.clone(), department.id));
                for employee in &section.employees {
                    names
                        .employees
                        .insert(employee.id, (employee.full_name.clone(), section.id));
                }
            }
        }
        names
    }

    pub fn department(&self, id: i64) -> String {
        self.departments
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    pub fn section(&self, id: i64) -> String {
        self.sections
            .get(&id)
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| format!("#{id}"))
    }

    pub fn employee(&self, id: i64) -> String {
        self.employees
            .get(&id)
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| format!("#{id}"))
    }

    pub fn service(&self, id: i64) -> String {
        self.services
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    fn department_of_section(&self, section: i64) -> Option<i64> {
        self.sections.get(&section).map(|(_, d)| *d)
    }

    fn section_of_employee(&self, employee: i64) -> Option<i64> {
        self.employees.get(&employee).map(|(_, s)| *s)
    }
}

/// A page's subject, checked against what the viewer may see.
#[derive(Debug, Clone)]
pub struct Selection {
    pub visibility: Visibility,
    /// The department in view: chosen, or the viewer's own, or the chosen section's.
    pub department: Option<i64>,
    pub section: Option<i64>,
    pub employee: Option<i64>,
    pub date: Date,
    /// The reports count only these visits: the viewer's scope and what was chosen.
    pub filter: ReportFilter,
}

impl Selection {
    /// Resolves the query; anything outside the viewer's scope is "not found".
    pub fn resolve(
        query: &PageQuery,
        visibility: Visibility,
        names: &Names,
        zone: &TimeZone,
        now: Timestamp,
    ) -> PageResult<Self> {
        let mut department = id(&query.department, "department")?;
        let mut section = id(&query.section, "section")?;
        let employee = id(&query.employee, "employee")?;
        let date = match query.date.as_deref().map(str::trim) {
            None | Some("") => zone.to_datetime(now).date(),
            Some(text) => text
                .parse::<Date>()
                .map_err(|_| PageError::bad_request("date must be YYYY-MM-DD"))?,
        };
        if let Some(d) = department
            && !names.departments.contains_key(&d)
        {
            return Err(PageError::not_found("department"));
        }
        if let Some(s) = section {
            let Some(owner) = names.department_of_section(s) else {
                return Err(PageError::not_found("section"));
            };
            if department.is_some_and(|d| d != owner) {
                return Err(PageError::not_found("section"));
            }
            department = Some(owner);
        }
        if let Some(e) = employee {
            let Some(home) = names.section_of_employee(e) else {
                return Err(PageError::not_found("employee"));
            };
            let home_department = names.department_of_section(home);
            let fits = match visibility {
                Visibility::All => true,
                Visibility::Department(d) => home_department == Some(d),
                Visibility::Section(s) => home == s,
            };
            if !fits
                || section.is_some_and(|s| s != home)
                || department.is_some_and(|d| Some(d) != home_department)
            {
                return Err(PageError::not_found("employee"));
            }
        }
        // The viewer's own scope bounds everything.
        match visibility {
            Visibility::All => {}
            Visibility::Department(d) => {
                if department.is_some_and(|x| x != d) {
                    return Err(PageError::not_found("department"));
                }
                department = Some(d);
            }
            Visibility::Section(s) => {
                if section.is_some_and(|x| x != s) {
                    return Err(PageError::not_found("section"));
                }
                let own = names.department_of_section(s);
                if department.is_some_and(|d| Some(d) != own) {
                    return Err(PageError::not_found("department"));
                }
                section = Some(s);
                department = own;
            }
        }
        let filter = ReportFilter {
            department_id: department,
            section_id: section,
            employee_id: employee,
            service_id: None,
        };
        Ok(Self {
            visibility,
            department,
            section,
            employee,
            date,
            filter,
        })
    }

    /// The query string that selects the same thing (without the leading `?`).
    pub fn query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = self.department {
            parts.push(format!("department={d}"));
        }
        if let Some(s) = self.section {
            parts.push(format!("section={s}"));
        }
        if let Some(e) = self.employee {
            parts.push(format!("employee={e}"));
        }
        parts.push(format!(
            "date={}",
            percent_encode(&self.date.strftime("%Y-%m-%d").to_string())
        ));
        parts.join("&")
    }

    /// Like [`Selection::query`] with one more choice replaced.
    pub fn query_with(
        &self,
        department: Option<i64>,
        section: Option<i64>,
        employee: Option<i64>,
    ) -> String {
        let copy = Selection {
            department,
            section,
            employee,
            ..self.clone()
        };
        copy.query()
    }

    /// "Жилищное управление / Отдел учета / Иванова О. П.", or the whole organisation.
    pub fn scope_label(&self, t: &Strings, names: &Names) -> String {
        let mut parts = Vec::new();
        if let Some(d) = self.department {
            parts.push(names.department(d));
        }
        if let Some(s) = self.section {
            parts.push(names.section(s));
        }
        if let Some(e) = self.employee {
            parts.push(names.employee(e));
        }
        if parts.is_empty() {
            t.scope_organisation.to_string()
        } else {
            parts.join(" / ")
        }
    }

    /// Departments the viewer may pick.
    pub fn departments_in_view<'a>(
        &self,
        directory: &'a Directory,
    ) -> Vec<&'a crate::storage::DepartmentEntry> {
        directory
            .departments
            .iter()
            .filter(|d| match self.visibility {
                Visibility::All => true,
                Visibility::Department(id) => d.id == id,
                Visibility::Section(s) => d.sections.iter().any(|x| x.id == s),
            })
            .collect()
    }

    /// Sections in view, within the chosen department if there is one.
    pub fn sections_in_view<'a>(
        &self,
        directory: &'a Directory,
    ) -> Vec<&'a crate::storage::SectionEntry> {
        directory
            .departments
            .iter()
            .filter(|d| self.department.is_none_or(|x| x == d.id))
            .flat_map(|d| &d.sections)
            .filter(|s| match self.visibility {
                Visibility::Section(id) => s.id == id,
                _ => true,
            })
            .collect()
    }

    /// Employees in view (where they work now), within the chosen section if there is one.
    pub fn employees_in_view<'a>(
        &self,
        directory: &'a Directory,
    ) -> Vec<&'a crate::storage::EmployeeEntry> {
        self.sections_in_view(directory)
            .into_iter()
            .filter(|s| self.section.is_none_or(|x| x == s.id))
            .flat_map(|s| &s.employees)
            .collect()
    }
}
