//! The sync worker: publishes waiting photos to the hub and settles them when
//! the hub's signed reply comes back.
//!
//! A photo is published (QoS 1) when it is captured, when the connection comes
//! up, and again whenever it has gone [`RESEND_AFTER`] without a reply: a
//! publication the broker accepted while the hub was down is lost to the hub,
//! and only a resend reaches it when it returns. The outbox is touched only
//! through `spawn_blocking`, so a slow SD card never stalls the MQTT task.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use guardian_protocol::{
    topics, DeviceMessage, DeviceSigningKey, Heartbeat, HubVerifyingKey, PhotoUpload, SignedMessage,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinError;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::capture::CaptureNews;
use crate::events::{self, Event};
use crate::health::{self, SharedHealth};
use crate::mqtt::{Link, LinkEvent};
use crate::notices::{self, Applied, NoticeError};
use crate::outbox::{Outbox, OutboxError, Settled};
use crate::reply::{self, ReplyError};

/// A published photo with no reply after this long is published again.
pub const RESEND_AFTER: Duration = Duration::from_secs(10);

/// Photos published and awaiting a reply at once. Each message holds a whole
/// photo, so this bounds the memory spent on publications in flight.
const MAX_IN_FLIGHT: usize = 4;

/// How often the worker looks for photos due for (re)publication.
const TICK: Duration = Duration::from_secs(1);

/// How often a heartbeat goes to the hub while connected (and once at
/// every connection). A PIN changed on the hub arrives within this time.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// What the sync worker needs to know about this device and its hub.
pub struct SyncSettings {
    pub device_id: Uuid,
    pub signing_key: DeviceSigningKey,
    pub hub_verifying_key: HubVerifyingKey,
    /// Stop once capturing has finished and the outbox is empty.
    pub exit_when_synced: bool,
    /// Shared with the kiosk: the link state goes in, the last error comes out.
    pub health: SharedHealth,
    /// The file whose presence says NTP synchronised the clock.
    pub clock_flag: PathBuf,
    /// How often to send a heartbeat, normally [`HEARTBEAT_EVERY`].
    pub heartbeat_every: Duration,
}

/// What happened during a run that ended because everything was synced.
#[derive(Debug, Default)]
pub struct SyncSummary {
    /// Photos the hub rejected in this run, with its reasons.
    pub rejected: Vec<(Uuid, String)>,
}

/// Why the sync worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),

    /// The capture thread could not go on (its reason says why).
    #[error("capturing stopped: {0}")]
    CaptureStopped(String),

    /// The MQTT task ended, which it never does on its own.
    #[error("the MQTT connection task ended unexpectedly; restart guardian-device")]
    LinkClosed,

    /// A blocking outbox task panicked.
    #[error("an outbox task failed: {0}")]
    Task(#[from] JoinError),
}

/// Runs until everything is synced (with `exit_when_synced`) or forever.
pub async fn run(
    outbox: Outbox,
    link: Link,
    news: UnboundedReceiver<CaptureNews>,
    settings: SyncSettings,
) -> Result<SyncSummary, SyncError> {
    let device_id = settings.device_id;
    let mut worker = Worker {
        outbox: Arc::new(Mutex::new(outbox)),
        link,
        settings: Arc::new(settings),
        photos_topic: topics::photos(device_id),
        status_topic: topics::status(device_id),
        replies_topic: topics::replies(device_id),
        notices_topic: topics::notices(device_id),
        connected: false,
        in_flight: HashMap::new(),
        summary: SyncSummary::default(),
    };
    worker.run(news).await?;
    Ok(worker.summary)
}

struct Worker {
    outbox: Arc<Mutex<Outbox>>,
    link: Link,
    settings: Arc<SyncSettings>,
    photos_topic: String,
    status_topic: String,
    replies_topic: String,
    notices_topic: String,
    connected: bool,
    /// When each photo was last published in the current session.
    in_flight: HashMap<Uuid, Instant>,
    summary: SyncSummary,
}

impl Worker {
    async fn run(&mut self, mut news: UnboundedReceiver<CaptureNews>) -> Result<(), SyncError> {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heartbeat = tokio::time::interval(self.settings.heartbeat_every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut capture_done = false;
        let revoked = self
            .with_outbox(|outbox| outbox.revoked_at())
            .await??
            .is_some();
        self.settings.health.lock().revoked = revoked;

        loop {
            self.settings.health.lock().sync_turn_at = Some(std::time::Instant::now());
            tokio::select! {
                event = self.link.events.recv() => match event {
                    Some(LinkEvent::Connected) => self.on_connected().await?,
                    Some(LinkEvent::Disconnected) => self.on_disconnected(),
                    Some(LinkEvent::Message { topic, payload }) => {
                        if topic == self.replies_topic {
                            self.on_reply(payload).await?;
                        } else if topic == self.notices_topic {
                            self.on_notice(payload).await?;
                        } else {
                            debug!(%topic, "message on an unexpected topic; ignored");
                        }
                    }
                    None => return Err(SyncError::LinkClosed),
                },
                item = news.recv(), if !capture_done => match item {
                    Some(CaptureNews::Captured(_)) => self.publish_due().await?,
                    Some(CaptureNews::Finished) => capture_done = true,
                    Some(CaptureNews::Stopped(reason)) => {
                        return Err(SyncError::CaptureStopped(reason))
                    }
                    None => {
                        return Err(SyncError::CaptureStopped(
                            "the capture thread ended unexpectedly".into(),
                        ))
                    }
                },
                _ = tick.tick() => self.publish_due().await?,
                _ = heartbeat.tick() => self.send_heartbeat().await?,
            }

            if self.settings.exit_when_synced
                && capture_done
                && self.with_outbox(|outbox| outbox.pending_count()).await?? == 0
            {
                info!("every captured photo is settled");
                return Ok(());
            }
        }
    }

    /// A new clean session: subscribe again and publish every waiting photo,
    /// since nothing published in the old session is known to have arrived.
    async fn on_connected(&mut self) -> Result<(), SyncError> {
        self.connected = true;
        {
            let mut health = self.settings.health.lock();
            health.connected = true;
            health.offline_since = None;
        }
        self.in_flight.clear();
        for topic in [&self.replies_topic, &self.notices_topic] {
            if let Err(error) = self.link.try_subscribe(topic) {
                warn!(%error, %topic, "cannot queue a subscription; it is retried on reconnect");
            }
        }
        self.send_heartbeat().await?;
        self.publish_due().await
    }

    fn on_disconnected(&mut self) {
        self.connected = false;
        let mut health = self.settings.health.lock();
        if health.connected || health.offline_since.is_none() {
            health.offline_since = Some(chrono::Local::now());
        }
        health.connected = false;
    }

    /// Tells the hub how the device is doing, and which PIN set it holds.
    async fn send_heartbeat(&mut self) -> Result<(), SyncError> {
        // A revoked device has nothing more to say: every message would only
        // earn another "revoked" notice and audit entry.
        if !self.connected || self.is_revoked() {
            return Ok(());
        }

        let (outbox_len, quarantined, pins) = self
            .with_outbox(|outbox| -> Result<_, OutboxError> {
                Ok((
                    outbox.pending_count()?,
                    outbox.quarantined()?.len(),
                    outbox.pins()?,
                ))
            })
            .await??;
        let now = Utc::now();
        let heartbeat = Heartbeat {
            sent_at: now,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            outbox_len: u32::try_from(outbox_len).unwrap_or(u32::MAX),
            quarantined: u32::try_from(quarantined).unwrap_or(u32::MAX),
            last_error: self.settings.health.lock().last_error.clone(),
            clock_synced: health::clock_synced(&self.settings.clock_flag, now),
            pins_digest: pins.map(|pins| pins.digest()),
        };
        let payload = SignedMessage::sign(
            self.settings.device_id,
            &DeviceMessage::Heartbeat(heartbeat),
            &self.settings.signing_key,
        );
        if let Err(error) = self.link.try_publish(&self.status_topic, payload) {
            debug!(%error, "publish queue is full; the heartbeat waits for the next round");
        }
        Ok(())
    }

    /// Keeps a trusted notice from the hub: a PIN set, or revocation.
    async fn on_notice(&mut self, payload: Vec<u8>) -> Result<(), SyncError> {
        let result = self.apply_from_hub(payload, notices::apply).await?;

        match result {
            Ok(Applied::Pins { teachers }) => {
                info!(teachers, "new teacher PINs from the hub");
                events::emit(&Event::PinsReceived { teachers });
            }
            Ok(Applied::StalePins) => debug!("PIN set no newer than the one held; ignored"),
            Ok(Applied::Revoked { at }) => {
                warn!(revoked_at = %at, "the hub revoked this device; it sends nothing more");
                self.settings.health.lock().revoked = true;
                events::emit(&Event::Revoked);
            }
            Err(NoticeError::Outbox(error)) => return Err(error.into()),
            Err(error) => warn!(%error, "untrusted notice"),
        }
        Ok(())
    }

    /// Publishes the oldest waiting photos that were never published in this
    /// session or have waited [`RESEND_AFTER`] for a reply, up to [`MAX_IN_FLIGHT`].
    async fn publish_due(&mut self) -> Result<(), SyncError> {
        if !self.connected || self.is_revoked() {
            return Ok(());
        }

        let pending = self.with_outbox(|outbox| outbox.pending()).await??;
        let waiting: HashSet<Uuid> = pending.iter().map(|photo| photo.photo_id).collect();
        self.in_flight.retain(|id, _| waiting.contains(id));

        let now = Instant::now();
        let is_fresh = |sent: &Instant| now.duration_since(*sent) < RESEND_AFTER;
        let mut busy = self
            .in_flight
            .values()
            .filter(|sent| is_fresh(sent))
            .count();

        for photo in pending {
            if busy >= MAX_IN_FLIGHT {
                break;
            }
            if self.in_flight.get(&photo.photo_id).is_some_and(is_fresh) {
                continue;
            }

            let Some(payload) = self.signed_upload(photo.photo_id).await? else {
                continue;
            };
            if let Err(error) = self.link.try_publish(&self.photos_topic, payload) {
                debug!(%error, "publish queue is full; trying again on the next tick");
                break;
            }

            self.in_flight.insert(photo.photo_id, Instant::now());
            busy += 1;
            let id = photo.photo_id;
            self.with_outbox(move |outbox| outbox.note_attempt(id))
                .await??;
            info!(photo_id = %id, attempt = photo.attempts + 1, "photo published");
        }
        Ok(())
    }

    /// The signed upload message for a waiting photo; `None` if it was settled
    /// in the meantime. Reading and signing a large envelope runs off the
    /// async threads.
    async fn signed_upload(&self, photo_id: Uuid) -> Result<Option<Vec<u8>>, SyncError> {
        let settings = Arc::clone(&self.settings);
        let envelope = self
            .with_outbox(move |outbox| outbox.envelope(photo_id))
            .await??;
        let Some(envelope) = envelope else {
            return Ok(None);
        };

        let payload = tokio::task::spawn_blocking(move || {
            let message = DeviceMessage::Photo(PhotoUpload {
                sent_at: Utc::now(),
                envelope,
            });
            SignedMessage::sign(settings.device_id, &message, &settings.signing_key)
        })
        .await?;
        Ok(Some(payload))
    }

    /// Settles a photo on a trusted reply; anything else is logged and ignored.
    async fn on_reply(&mut self, payload: Vec<u8>) -> Result<(), SyncError> {
        let result = self.apply_from_hub(payload, reply::apply).await?;

        match result {
            Ok(Settled::Delivered { photo_id }) => {
                self.in_flight.remove(&photo_id);
                info!(%photo_id, "hub stored the photo");
                events::emit(&Event::Delivered { photo_id });
            }
            Ok(Settled::Quarantined { photo_id, reason }) => {
                self.in_flight.remove(&photo_id);
                warn!(%photo_id, %reason, "hub rejected the photo; moved to quarantine");
                events::emit(&Event::Rejected {
                    photo_id,
                    reason: reason.clone(),
                });
                self.summary.rejected.push((photo_id, reason));
            }
            Ok(Settled::NoMatch { photo_id, why }) => {
                warn!(%photo_id, ?why, "reply matches no waiting photo; ignored");
            }
            Err(ReplyError::Outbox(error)) => return Err(error.into()),
            Err(error) => {
                warn!(device_id = %self.settings.device_id, %error, "untrusted reply");
                return Ok(());
            }
        }

        // A settled photo frees a place in flight for the next one.
        self.publish_due().await
    }

    /// Checks a payload from the hub with `apply` (a reply's or a notice's),
    /// under this device's hub key and id, and applies it to the outbox.
    async fn apply_from_hub<T, E>(
        &self,
        payload: Vec<u8>,
        apply: fn(&mut Outbox, &[u8], &HubVerifyingKey, Uuid) -> Result<T, E>,
    ) -> Result<Result<T, E>, SyncError>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let settings = Arc::clone(&self.settings);
        self.with_outbox(move |outbox| {
            apply(
                outbox,
                &payload,
                &settings.hub_verifying_key,
                settings.device_id,
            )
        })
        .await
    }

    /// Whether the hub revoked this device: then nothing more is published.
    fn is_revoked(&self) -> bool {
        self.settings.health.lock().revoked
    }

    /// Runs `f` on the outbox on a blocking thread.
    async fn with_outbox<T, F>(&self, f: F) -> Result<T, SyncError>
    where
        F: FnOnce(&mut Outbox) -> T + Send + 'static,
        T: Send + 'static,
    {
        let outbox = Arc::clone(&self.outbox);
        let result = tokio::task::spawn_blocking(move || {
            // A panic in an earlier task cannot leave the outbox half-changed:
            // every change is one SQLite transaction.
            let mut outbox = outbox.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut outbox)
        })
        .await?;
        Ok(result)
    }
}
