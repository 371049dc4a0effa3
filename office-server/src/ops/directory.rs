//! Changes to the directory: departments, sections, employees, services, and which sections
//! offer which services. Entries are created and renamed, never deleted: visits keep their
//! references.

use std::collections::HashSet;

use super::audit;
use crate::domain::{DirectoryName, Position};
use crate::storage::{AuditAction, Storage, StorageError};

/// One change an administrator makes.
#[derive(Debug, Clone)]
pub enum DirectoryChange {
    CreateDepartment {
        name: DirectoryName,
    },
    RenameDepartment {
        id: i64,
        name: DirectoryName,
    },
    CreateSection {
        department_id: i64,
        name: DirectoryName,
    },
    RenameSection {
        id: i64,
        name: DirectoryName,
    },
    /// The services a section offers, in display order; repeats are dropped.
    SetSectionServices {
        section_id: i64,
        service_ids: Vec<i64>,
    },
    CreateEmployee {
        section_id: i64,
        full_name: DirectoryName,
        position: Position,
    },
    /// Renames an employee or moves them to another section; their past visits stay where
    /// they were made.
    UpdateEmployee {
        id: i64,
        section_id: i64,
        full_name: DirectoryName,
        position: Position,
    },
    CreateService {
        name: DirectoryName,
    },
    RenameService {
        id: i64,
        name: DirectoryName,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("this name is already taken")]
    NameTaken,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for DirectoryError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::AlreadyExists(_) => DirectoryError::NameTaken,
            StorageError::NotFound(what) => DirectoryError::NotFound(what),
            other => DirectoryError::Storage(other),
        }
    }
}

/// Makes the change; returns the id of what it created, if it created something.
pub fn change_directory(
    db: &dyn Storage,
    change: &DirectoryChange,
    by: i64,
) -> Result<Option<i64>, DirectoryError> {
    use DirectoryChange::*;
    let created = match change {
        CreateDepartment { name } => Some(db.create_department(name.as_str())?),
        RenameDepartment { id, name } => {
            db.rename_department(*id, name.as_str())?;
            None
        }
        CreateSection {
            department_id,
            name,
        } => Some(db.create_section(*department_id, name.as_str())?),
        RenameSection { id, name } => {
            db.rename_section(*id, name.as_str())?;
            None
        }
        SetSectionServices {
            section_id,
            service_ids,
        } => {
            let known = db
                .directory()?
                .departments
                .iter()
                .flat_map(|d| &d.sections)
                .any(|s| s.id == *section_id);
            if !known {
                return Err(DirectoryError::NotFound("section"));
            }
            let mut seen = HashSet::new();
            let services: Vec<i64> = service_ids
                .iter()
                .copied()
                .filter(|id| seen.insert(*id))
                .collect();
            db.set_section_services(*section_id, &services)?;
            None
        }
        CreateEmployee {
            section_id,
            full_name,
            position,
        } => Some(db.create_employee(*section_id, full_name.as_str(), position.as_str())?),
        UpdateEmployee {
            id,
            section_id,
            full_name,
            position,
        } => {
            db.update_employee(*id, *section_id, full_name.as_str(), position.as_str())?;
            None
        }
        CreateService { name } => Some(db.create_service(name.as_str())?),
        RenameService { id, name } => {
            db.rename_service(*id, name.as_str())?;
            None
        }
    };
    tracing::info!(by, change = change.kind(), ?created, "directory changed");
    audit::changed(
        db,
        Some(by),
        AuditAction::DirectoryChange,
        change.describe(created),
    )?;
    Ok(created)
}

impl DirectoryChange {
    /// What the change did, for the audit log.
    pub fn describe(&self, created: Option<i64>) -> String {
        use DirectoryChange::*;
        let new = created.map(|id| format!(" #{id}")).unwrap_or_default();
        match self {
            CreateDepartment { name } => format!("департамент{new}: «{name}»"),
            RenameDepartment { id, name } => format!("департамент #{id}: «{name}»"),
            CreateSection {
                department_id,
                name,
            } => format!("отдел{new} департамента #{department_id}: «{name}»"),
            RenameSection { id, name } => format!("отдел #{id}: «{name}»"),
            SetSectionServices {
                section_id,
                service_ids,
            } => format!("услуги отдела #{section_id}: {service_ids:?}"),
            CreateEmployee {
                section_id,
                full_name,
                position,
            } => format!("сотрудник{new} отдела #{section_id}: «{full_name}», «{position}»"),
            UpdateEmployee {
                id,
                section_id,
                full_name,
                position,
            } => format!("сотрудник #{id}, отдел #{section_id}: «{full_name}», «{position}»"),
            CreateService { name } => format!("услуга{new}: «{name}»"),
            RenameService { id, name } => format!("услуга #{id}: «{name}»"),
        }
    }

    /// A short name of the change, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            DirectoryChange::CreateDepartment { .. } => "create_department",
            DirectoryChange::RenameDepartment { .. } => "rename_department",
            DirectoryChange::CreateSection { .. } => "create_section",
            DirectoryChange::RenameSection { .. } => "rename_section",
            DirectoryChange::SetSectionServices { .. } => "set_section_services",
            DirectoryChange::CreateEmployee { .. } => "create_employee",
            DirectoryChange::UpdateEmployee { .. } => "update_employee",
            DirectoryChange::CreateService { .. } => "create_service",
            DirectoryChange::RenameService { .. } => "rename_service",
        }
    }
}
