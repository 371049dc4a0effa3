//! Departments, sections, employees and the service catalogue.

use rusqlite::params;

use super::{SqliteStorage, changed_one, unique};
use crate::storage::*;

impl SqliteStorage {
    /// Renames one directory row with `update` (`?1` the name, `?2` the id): a taken name is
    /// [`StorageError::AlreadyExists`], a missing row [`StorageError::NotFound`], both `what`.
    fn rename_row(
        &self,
        update: &str,
        what: &'static str,
        id: i64,
        name: &str,
    ) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx
                .execute(update, params![name, id])
                .map_err(unique(what))?;
            changed_one(changed, what)
        })
    }
}

impl DirectoryStore for SqliteStorage {
    fn create_department(&self, name: &str) -> StorageResult<i64> {
        self.write(|tx| {
            tx.execute("INSERT INTO departments (name) VALUES (?1)", [name])
                .map_err(unique("department"))?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn rename_department(&self, id: i64, name: &str) -> StorageResult<()> {
        self.rename_row(
            "UPDATE departments SET name = ?1 WHERE id = ?2",
            "department",
            id,
            name,
        )
    }

    fn create_section(&self, department_id: i64, name: &str) -> StorageResult<i64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO sections (department_id, name) VALUES (?1, ?2)",
                params![department_id, name],
            )
            .map_err(unique("section"))?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn rename_section(&self, id: i64, name: &str) -> StorageResult<()> {
        self.rename_row(
            "UPDATE sections SET name = ?1 WHERE id = ?2",
            "section",
            id,
            name,
        )
    }

    fn set_section_services(&self, section_id: i64, service_ids: &[i64]) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM section_services WHERE section_id = ?1",
                [section_id],
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO section_services (section_id, service_id, position) VALUES (?1, ?2, ?3)",
            )?;
            for (position, service_id) in service_ids.iter().enumerate() {
                insert
                    .execute(params![section_id, service_id, position as i64])
                    .map_err(unique("section or service"))?;
            }
            Ok(())
        })
    }

    fn create_employee(
        &self,
        section_id: i64,
        full_name: &str,
        position: &str,
    ) -> StorageResult<i64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO employees (section_id, full_name, position) VALUES (?1, ?2, ?3)",
                params![section_id, full_name, position],
            )
            .map_err(unique("employee"))?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn update_employee(
        &self,
        id: i64,
        section_id: i64,
        full_name: &str,
        position: &str,
    ) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE employees SET section_id = ?1, full_name = ?2, position = ?3 WHERE id = ?4",
                    params![section_id, full_name, position, id],
                )
                .map_err(unique("section"))?;
            changed_one(changed, "employee")
        })
    }

    fn create_service(&self, name: &str) -> StorageResult<i64> {
        self.write(|tx| {
            tx.execute("INSERT INTO services (name) VALUES (?1)", [name])
                .map_err(unique("service"))?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn rename_service(&self, id: i64, name: &str) -> StorageResult<()> {
        self.rename_row(
            "UPDATE services SET name = ?1 WHERE id = ?2",
            "service",
            id,
            name,
        )
    }

    fn directory(&self) -> StorageResult<Directory> {
        let conn = self.reader()?;
        let services = conn
            .prepare("SELECT id, name FROM services ORDER BY name")?
            .query_map([], |row| {
                Ok(ServiceEntry {
                    id: row.get(0)?,
                    name: row.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut departments = conn
            .prepare("SELECT id, name FROM departments ORDER BY name")?
            .query_map([], |row| {
                Ok(DepartmentEntry {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    sections: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut sections_stmt =
            conn.prepare("SELECT id, name FROM sections WHERE department_id = ?1 ORDER BY name")?;
        let mut employees_stmt = conn.prepare(
            "SELECT id, full_name, position FROM employees WHERE section_id = ?1 ORDER BY full_name",
        )?;
        let mut services_stmt = conn.prepare(
            "SELECT service_id FROM section_services WHERE section_id = ?1 ORDER BY position",
        )?;
        for department in &mut departments {
            let sections = sections_stmt
                .query_map([department.id], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
            for (id, name) in sections {
                let employees = employees_stmt
                    .query_map([id], |row| {
                        Ok(EmployeeEntry {
                            id: row.get(0)?,
                            full_name: row.get(1)?,
                            position: row.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let service_ids = services_stmt
                    .query_map([id], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()?;
                department.sections.push(SectionEntry {
                    id,
                    name,
                    employees,
                    service_ids,
                });
            }
        }
        Ok(Directory {
            departments,
            services,
        })
    }
}
