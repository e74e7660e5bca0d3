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
