//! The MedMij lists in use: read from files or `https` URLs at start (a list that cannot be read
//! stops start-up), re-read every `lists_refresh_seconds` and on SIGHUP. A list that cannot be
//! read or does not parse, or whose `Volgnummer` is lower than the one in use, is refused with a
//! log line and the previous one stays. Readers take the current set as a whole ([`Lists::current`]).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::lists::{
    self, GegevensdienstNames, OAuthClientList, Whitelist, Zorgaanbiederslijst, MAX_LIST_BYTES,
};
use super::settings::{ListSource, MedmijSettings};

/// The lists in use.
#[derive(Debug, Clone)]
pub struct ListSet {
    /// The OAuth client list.
    pub clients: OAuthClientList,
    /// The whitelist.
    pub whitelist: Whitelist,
    /// The gegevensdienst name list.
    pub names: GegevensdienstNames,
    /// The zorgaanbieder list, when configured.
    pub zorgaanbieders: Option<Zorgaanbiederslijst>,
}

/// The lists and where they come from.
#[derive(Debug)]
pub struct Lists {
    settings: MedmijSettings,
    current: RwLock<Arc<ListSet>>,
    http: reqwest::Client,
}

/// Reads a list's bytes (at most [`MAX_LIST_BYTES`]).
pub async fn read(source: &ListSource, http: &reqwest::Client) -> Result<Vec<u8>, String> {
    match source {
        ListSource::File(path) => {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if bytes.len() > MAX_LIST_BYTES {
                return Err(format!(
                    "{}: larger than {MAX_LIST_BYTES} bytes",
                    path.display()
                ));
            }
            Ok(bytes)
        }
        ListSource::Url(url) => {
            let mut response = http
                .get(url.clone())
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("{url}: status {}", response.status()));
            }
            let mut buf = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
                if buf.len() + chunk.len() > MAX_LIST_BYTES {
                    return Err(format!("{url}: larger than {MAX_LIST_BYTES} bytes"));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(buf)
        }
    }
}

/// The client lists are read with: no redirects, 30 s per list.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

async fn load<T>(
    source: &ListSource,
    http: &reqwest::Client,
    parse: fn(&[u8]) -> Result<T, lists::ListError>,
) -> Result<T, String> {
    let bytes = read(source, http).await?;
    parse(&bytes).map_err(|e| format!("{source}: {e}"))
}

/// A new list replaces the one in use unless its `Volgnummer` is lower.
fn newer<T>(what: &str, old: &T, new: T, number: fn(&T) -> u64) -> Result<T, String> {
    if number(&new) < number(old) {
        return Err(format!(
            "{what}: Volgnummer {} is lower than the {} in use",
            number(&new),
            number(old)
        ));
    }
    Ok(new)
}

impl Lists {
    /// Reads every list once; any failure stops start-up.
    pub async fn load(settings: &MedmijSettings) -> Result<Self, String> {
        let http = http_client()?;
        let set = ListSet {
            clients: load(
                &settings.oauth_client_list,
                &http,
                lists::parse_oauth_client_list,
            )
            .await?,
            whitelist: load(&settings.whitelist, &http, lists::parse_whitelist).await?,
            names: load(
                &settings.gegevensdienst_name_list,
                &http,
                lists::parse_gegevensdienst_names,
            )
            .await?,
            zorgaanbieders: match &settings.zorgaanbieder_list {
                Some(s) => Some(load(s, &http, lists::parse_zorgaanbiederslijst).await?),
                None => None,
            },
        };
        check_own_entry(settings, &set);
        Ok(Self {
            settings: settings.clone(),
            current: RwLock::new(Arc::new(set)),
            http,
        })
    }

    /// The lists in use.
    #[must_use]
    pub fn current(&self) -> Arc<ListSet> {
        self.current
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Re-reads every list; each that fails (unreadable, not parsing, a lower `Volgnummer`) is
    /// logged and keeps its previous version. Returns the failures.
    pub async fn refresh(&self) -> Vec<String> {
        let old = self.current();
        let s = &self.settings;
        let mut failures = Vec::new();
        fn keep<T>(failures: &mut Vec<String>, r: Result<T, String>, old: T) -> T {
            match r {
                Ok(v) => v,
                Err(e) => {
                    failures.push(e);
                    old
                }
            }
        }
        let clients = keep(
            &mut failures,
            match load(
                &s.oauth_client_list,
                &self.http,
                lists::parse_oauth_client_list,
            )
            .await
            {
                Ok(n) => newer("OAuth client list", &old.clients, n, |l| l.volgnummer),
                Err(e) => Err(e),
            },
            old.clients.clone(),
        );
        let whitelist = keep(
            &mut failures,
            match load(&s.whitelist, &self.http, lists::parse_whitelist).await {
                Ok(n) => newer("whitelist", &old.whitelist, n, |l| l.volgnummer),
                Err(e) => Err(e),
            },
            old.whitelist.clone(),
        );
        let names = keep(
            &mut failures,
            match load(
                &s.gegevensdienst_name_list,
                &self.http,
                lists::parse_gegevensdienst_names,
            )
            .await
            {
                Ok(n) => newer("gegevensdienst name list", &old.names, n, |l| l.volgnummer),
                Err(e) => Err(e),
            },
            old.names.clone(),
        );
        let zorgaanbieders = match (&s.zorgaanbieder_list, &old.zorgaanbieders) {
            (Some(source), Some(previous)) => Some(keep(
                &mut failures,
                match load(source, &self.http, lists::parse_zorgaanbiederslijst).await {
                    Ok(n) => newer("zorgaanbieder list", previous, n, |l| l.volgnummer),
                    Err(e) => Err(e),
                },
                previous.clone(),
            )),
            _ => old.zorgaanbieders.clone(),
        };
        for f in &failures {
            tracing::warn!(error = %f, "MedMij list refused; the previous one stays in use");
        }
        let set = ListSet {
            clients,
            whitelist,
            names,
            zorgaanbieders,
        };
        check_own_entry(s, &set);
        tracing::info!(
            oauth_client_list = set.clients.volgnummer,
            whitelist = set.whitelist.volgnummer,
            gegevensdienst_name_list = set.names.volgnummer,
            "MedMij lists in use"
        );
        match self.current.write() {
            Ok(mut c) => *c = Arc::new(set),
            Err(e) => *e.into_inner() = Arc::new(set),
        }
        failures
    }

    /// Re-reads the lists every `lists_refresh_seconds`.
    pub async fn follow(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.settings.lists_refresh);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.refresh().await;
        }
    }
}

/// Warns when the zorgaanbieder list (if read) does not list us with every gegevensdienst served.
fn check_own_entry(settings: &MedmijSettings, set: &ListSet) {
    let Some(zal) = &set.zorgaanbieders else {
        return;
    };
    match zal.zorgaanbieder(&settings.aanbieder) {
        None => tracing::warn!(
            aanbieder = %settings.aanbieder,
            "the zorgaanbieder list does not list this aanbieder: no DVP will find us"
        ),
        Some(z) => {
            for id in &settings.gegevensdiensten {
                if z.gegevensdienst(id).next().is_none() {
                    tracing::warn!(aanbieder = %settings.aanbieder, gegevensdienst = %id,
                        "the zorgaanbieder list does not list this gegevensdienst for us");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::medmij::settings::Login;

    fn sample(name: &str) -> String {
        std::fs::read_to_string(format!("{}/medmij/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn settings(dir: &std::path::Path, ocl: ListSource) -> MedmijSettings {
        for name in [
            "MedMij_Whitelist.xml",
            "MedMij_Gegevensdienstnamenlijst.xml",
        ] {
            std::fs::write(dir.join(name), sample(name)).unwrap();
        }
        MedmijSettings {
            aanbieder: "umcharderwijk".into(),
            aanbieder_display_name: "UMC Harderwijk".into(),
            gegevensdiensten: vec!["48".into()],
            oauth_client_list: ocl,
            whitelist: ListSource::File(dir.join("MedMij_Whitelist.xml")),
            gegevensdienst_name_list: ListSource::File(
                dir.join("MedMij_Gegevensdienstnamenlijst.xml"),
            ),
            zorgaanbieder_list: None,
            lists_refresh: Duration::from_secs(3600),
            token_lifetime: Duration::from_secs(900),
            require_client_certificate: false,
            login: Login::DangerousDev,
            receptive: vec!["48".into()],
            receptiveness_url: None,
            receptiveness_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn a_list_that_fails_or_goes_back_keeps_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let ocl = dir.path().join("MedMij_OAuthclientlist.xml");
        let text = sample("MedMij_OAuthclientlist.xml");
        std::fs::write(&ocl, &text).unwrap();
        let lists = Lists::load(&settings(dir.path(), ListSource::File(ocl.clone())))
            .await
            .unwrap();
        assert_eq!(lists.current().clients.volgnummer, 17);
        // Does not parse: refused, the old one stays.
        std::fs::write(&ocl, "<OAuthclientlist/>").unwrap();
        let failures = lists.refresh().await;
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(lists.current().clients.volgnummer, 17);
        // A lower Volgnummer: refused.
        std::fs::write(&ocl, text.replace("<Volgnummer>17<", "<Volgnummer>16<")).unwrap();
        let failures = lists.refresh().await;
        assert_eq!(
            failures,
            ["OAuth client list: Volgnummer 16 is lower than the 17 in use"]
        );
        // A newer one, without a client: taken.
        let newer = text.replace("<Volgnummer>17<", "<Volgnummer>18<").replace(
            "<Hostname>pgo.verzamelaar.example.nl</Hostname>",
            "<Hostname>pgo.nieuw.example.nl</Hostname>",
        );
        std::fs::write(&ocl, newer).unwrap();
        assert!(lists.refresh().await.is_empty());
        let now = lists.current();
        assert_eq!(now.clients.volgnummer, 18);
        assert!(now.clients.client("pgo.nieuw.example.nl").is_some());
        // Gone: refused, the old one stays.
        std::fs::remove_file(&ocl).unwrap();
        assert_eq!(lists.refresh().await.len(), 1);
        assert_eq!(lists.current().clients.volgnummer, 18);
    }

    #[tokio::test]
    async fn lists_come_from_urls_too() {
        let text = sample("MedMij_OAuthclientlist.xml");
        let app = axum::Router::new().route(
            "/MedMij_OAuthclientlist.xml",
            axum::routing::get(move || {
                let t = text.clone();
                async move { t }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::parse(&format!("http://{addr}/MedMij_OAuthclientlist.xml")).unwrap();
        let lists = Lists::load(&settings(dir.path(), ListSource::Url(url)))
            .await
            .unwrap();
        assert_eq!(lists.current().clients.clients.len(), 3);
        let missing = url::Url::parse(&format!("http://{addr}/nope.xml")).unwrap();
        let err = Lists::load(&settings(dir.path(), ListSource::Url(missing)))
            .await
            .unwrap_err();
        assert!(err.ends_with("status 404 Not Found"), "{err}");
    }
}
