//! The chat services the service posts to (Slack, Teams), each on its own outbox deliverer ([`crate::outbox`]).

use std::sync::Arc;

use tokio::sync::watch;

use crate::app::App;
use crate::config::ServerConfig;
use crate::outbox::run;

/// The chat services configured: Slack and Teams.
pub(crate) struct Chat {
    /// Slack (also needed by the interactivity route).
    pub(crate) slack: Option<Arc<crate::slack::Slack>>,
    teams: Option<Arc<crate::teams::Teams>>,
}

impl Chat {
    /// The chat services of `config`; links to request pages start at the public URL, else at `url` (the
    /// listener's).
    pub(crate) fn new(config: &ServerConfig, url: &str) -> Self {
        let base = config
            .public_url
            .clone()
            .or_else(|| url::Url::parse(url).ok())
            .unwrap_or_else(|| url::Url::parse("http://localhost/").expect("a valid URL"));
        let http = crate::webhooks::http_client(config);
        Chat {
            slack: config
                .slack
                .clone()
                .map(|s| Arc::new(crate::slack::Slack::new(s, http.clone(), base.clone()))),
            teams: config
                .teams_webhook
                .clone()
                .map(|u| Arc::new(crate::teams::Teams::new(u, http.clone(), base.clone()))),
        }
    }

    /// Starts a deliverer per configured chat service.
    pub(crate) fn start(
        &self,
        app: &Arc<App>,
        config: &ServerConfig,
        stop: &watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(s) = &self.slack {
            tasks.push(tokio::spawn(run(app.clone(), s.clone(), config.clone(), stop.clone())));
        }
        if let Some(t) = &self.teams {
            tasks.push(tokio::spawn(run(app.clone(), t.clone(), config.clone(), stop.clone())));
        }
        tasks
    }
}
