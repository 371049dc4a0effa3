//! The demo organisation: the departments, sections and services of the seed documents
//! (Khanty-Mansiysk city administration), with a handful of employees per section.

pub mod history;

use crate::storage::{Storage, StorageError, StorageResult};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "the directory is not empty ({0} departments); the demo organisation loads only into an empty one"
    )]
    NotEmpty(i64),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

struct Section {
    name: &'static str,
    services: &'static [&'static str],
    employees: &'static [(&'static str, &'static str)],
}

const CONSULTATION: &str = "Консультация";
const QUEUE_INFO: &str = "Предоставление информации об очередности предоставления жилых помещений на условиях социального найма";
const REGISTRATION: &str = "Прием заявлений, документов, а также постановка граждан на учет в качестве нуждающихся в жилых помещениях";
const YOUNG_FAMILIES: &str = "Обеспечение жильем молодых семей (ипотечный кредит)";
const FREE_LAND: &str = "Бесплатное предоставление земельных участков";
const SUBSIDY: &str = "Предоставление субсидий на оплату жилого помещения и коммунальных услуг";
const LAND_LEASE: &str = "Предоставление земельных участков в аренду";
const LAND_CONTROL: &str = "Муниципальный земельный контроль";
const BUILD_PERMIT: &str = "Выдача разрешений на строительство";
const URBAN_PLAN: &str = "Выдача градостроительного плана земельного участка";

pub(crate) const HOUSING: &str = "Жилищное управление";
pub(crate) const URBAN: &str = "Департамент градостроительства и архитектуры";

const ORGANISATION: &[(&str, &[Section])] = &[
    (
        HOUSING,
        &[
            Section {
                name: "Отдел учета",
                services: &[CONSULTATION, QUEUE_INFO, REGISTRATION],
                employees: &[
                    ("Иванова Ольга Петровна", "Начальник отдела"),
                    ("Смирнов Алексей Викторович", "Главный специалист"),
                    ("Кузнецова Марина Сергеевна", "Ведущий специалист"),
                    ("Попов Дмитрий Андреевич", "Специалист-эксперт"),
                ],
            },
            Section {
                name: "Отдел субсидий",
                services: &[CONSULTATION, YOUNG_FAMILIES, SUBSIDY],
                employees: &[
                    ("Васильева Елена Николаевна", "Начальник отдела"),
                    ("Петров Игорь Михайлович", "Главный специалист"),
                    ("Соколова Анна Владимировна", "Ведущий специалист"),
                ],
            },
        ],
    ),
    (
        URBAN,
        &[
            Section {
                name: "Управление земельных отношений, контроля и мониторинга земель",
                services: &[CONSULTATION, FREE_LAND, LAND_LEASE, LAND_CONTROL],
                employees: &[
                    ("Михайлов Сергей Александрович", "Начальник управления"),
                    ("Новикова Татьяна Юрьевна", "Главный специалист"),
                    ("Федоров Павел Олегович", "Ведущий специалист"),
                    ("Морозова Ирина Геннадьевна", "Специалист-эксперт"),
                ],
            },
            Section {
                name: "Отдел архитектуры",
                services: &[CONSULTATION, BUILD_PERMIT, URBAN_PLAN],
                employees: &[
                    ("Волков Андрей Николаевич", "Главный архитектор"),
                    ("Алексеева Наталья Ивановна", "Ведущий специалист"),
                    ("Лебедев Константин Сергеевич", "Специалист-эксперт"),
                ],
            },
        ],
    ),
];

/// What the loader created, for the command's report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub departments: usize,
    pub sections: usize,
    pub employees: usize,
    pub services: usize,
}

/// Loads the demo organisation into an empty directory.
pub fn load_demo_organisation(storage: &dyn Storage) -> Result<Loaded, DemoError> {
    let counts = storage.counts()?;
    if counts.departments > 0 || counts.services > 0 {
        return Err(DemoError::NotEmpty(counts.departments));
    }
    let mut loaded = Loaded::default();
    let mut service_ids: Vec<(&str, i64)> = Vec::new();
    let mut service_id = |name: &'static str, loaded: &mut Loaded| -> StorageResult<i64> {
        if let Some((_, id)) = service_ids.iter().find(|(known, _)| *known == name) {
            return Ok(*id);
        }
        let id = storage.create_service(name)?;
        service_ids.push((name, id));
        loaded.services += 1;
        Ok(id)
    };
    for (department, sections) in ORGANISATION {
        let department_id = storage.create_department(department)?;
        loaded.departments += 1;
        for section in *sections {
            let section_id = storage.create_section(department_id, section.name)?;
            loaded.sections += 1;
            let services = section
                .services
                .iter()
                .map(|name| service_id(name, &mut loaded))
                .collect::<StorageResult<Vec<_>>>()?;
            storage.set_section_services(section_id, &services)?;
            for (full_name, position) in section.employees {
                storage.create_employee(section_id, full_name, position)?;
                loaded.employees += 1;
            }
        }
    }
    Ok(loaded)
}
