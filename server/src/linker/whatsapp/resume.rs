//! At start: delete the device files of attempts that never became channels, then resume every
//! connected channel, a few at a time, in the background.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::live::LiveDevices;
use crate::channels::LinkerKind;
use crate::domain::ChannelId;

impl LiveDevices {
    /// Deletes the device files whose id is no channel's: attempts cut short by a crash. Run
    /// before the API serves, so that no new attempt's file can be taken for a leftover.
    pub async fn remove_leftovers(&self) -> anyhow::Result<()> {
        let inner = self.inner();
        let known: HashSet<ChannelId> =
            inner.book.ids(LinkerKind::Whatsapp).await?.into_iter().collect();
        for leftover in inner.files.leftovers(&known).await? {
            tracing::info!(device = %leftover, "removing the device file of an unfinished pairing");
            inner.files.remove(&leftover).await?;
        }
        Ok(())
    }

    /// Resumes every connected channel in a task of the live channels' own, so that the API
    /// serves meanwhile; [`LiveChannels::stop`](crate::channels::LiveChannels::stop) ends it
    /// early and waits for it.
    pub fn resume_all(&self) {
        let live = self.clone();
        self.inner().tasks.spawn(async move {
            if let Err(error) = live.resume_connected().await {
                tracing::error!(error = ?error, "resuming WhatsApp channels failed");
            }
        });
    }

    async fn resume_connected(&self) -> anyhow::Result<()> {
        let inner = self.inner();
        let channels = inner.book.connected(LinkerKind::Whatsapp).await?;
        let limit = Arc::new(Semaphore::new(inner.config.resume_concurrency.max(1)));
        let mut resumed = tokio::task::JoinSet::new();
        for channel in channels {
            let (live, limit) = (self.clone(), limit.clone());
            resumed.spawn(async move {
                let _permit = limit.acquire().await;
                // Stopping: leave the rest for the next start.
                if !live.inner().shutdown.is_cancelled() {
                    live.resume(&channel).await;
                }
            });
        }
        while resumed.join_next().await.is_some() {}
        Ok(())
    }
}
