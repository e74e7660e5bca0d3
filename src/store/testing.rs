//! Test support shared by the crate's unit tests and the integration tests (hidden from the
//! documentation; nothing in the binary uses it): a PostgreSQL database of its own per test.

use sqlx::Connection as _;

/// A fresh PostgreSQL database, dropped when this guard is dropped (also when the test panics,
/// so a failing part leaks no database).
pub struct PgDatabase {
    admin: String,
    /// The database's URL.
    pub url: String,
}

impl PgDatabase {
    /// A new database, or `None` (visibly, on stderr) where no server runs; in CI (`CI` set) a
    /// missing server is a failure.
    pub async fn create(what: &str) -> Option<Self> {
        sqlx::any::install_default_drivers();
        let admin = std::env::var("POORTWACHTER_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut conn = match sqlx::AnyConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must provide PostgreSQL at {admin}: {e}"
                );
                eprintln!("SKIPPED: no PostgreSQL at {admin} ({e}); {what} not run on PostgreSQL");
                return None;
            }
        };
        let name = format!("pw_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        conn.close().await.expect("close");
        let (base, _) = admin.rsplit_once('/').expect("a database URL");
        let url = format!("{base}/{name}");
        Some(Self { admin, url })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, url) = (self.admin.clone(), self.url.clone());
        // Its own thread and runtime: this may run while the test's runtime unwinds a panic.
        let dropped = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let name = url.rsplit('/').next().unwrap_or_default().to_owned();
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        });
        let _ = dropped.join();
    }
}
