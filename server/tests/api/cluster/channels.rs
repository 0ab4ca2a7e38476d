//! Channels across servers: each connected channel live on exactly one server, spread fairly,
//! handed over on stop, taken over after a crash, and sent on through any server.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use keebai_test_support::{Api, ServerProcess};
use reqwest::StatusCode;
use serde_json::json;

use super::Nodes;

/// `n` channels paired through `api`, with numbers of their own.
async fn pair_many(api: &Api, n: usize) -> Vec<String> {
    let mut channels = Vec::new();
    for i in 0..n {
        channels.push(api.pair(&format!("+5691000000{i}")).await);
    }
    channels
}

/// Each server's live channels, asked at the same time.
async fn live_sets(apis: &[Api]) -> Vec<HashSet<String>> {
    join_all(apis.iter().map(|api| async { api.sim_live().await.into_iter().collect() })).await
}

/// Channels live on two servers in a sample. Hand-overs can fall between the requests of one
/// sample, so callers count a channel as doubly live only when two samples in a row say so.
fn doubly_live(sets: &[HashSet<String>]) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut twice = HashSet::new();
    for set in sets {
        for id in set {
            if !seen.insert(id.clone()) {
                twice.insert(id.clone());
            }
        }
    }
    twice
}

/// Samples the servers until `done` holds of a sample, checking that no channel is ever live on
/// two servers; fails after `within`.
async fn watch_until(
    apis: &[Api],
    within: Duration,
    done: impl Fn(&[HashSet<String>]) -> bool,
) -> Vec<HashSet<String>> {
    let started = Instant::now();
    let mut suspect = HashSet::new();
    loop {
        let sets = live_sets(apis).await;
        let twice = doubly_live(&sets);
        let confirmed: Vec<_> = twice.intersection(&suspect).collect();
        assert!(confirmed.is_empty(), "live on two servers: {confirmed:?} in {sets:?}");
        suspect = twice;
        if done(&sets) {
            return sets;
        }
        assert!(started.elapsed() < within, "not settled within {within:?}: {sets:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sizes(sets: &[HashSet<String>]) -> Vec<usize> {
    sets.iter().map(HashSet::len).collect()
}

/// Sends a text through `api` and checks that it is accepted.
async fn send_ok(api: &Api, channel: &str, text: &str) {
    let body = json!({"channel_id": channel, "to": "+14155550100", "text": text});
    let sent = api.send_text(&api.token, body).await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED, "{:?}", sent.text().await);
}

#[tokio::test]
async fn six_channels_on_one_server_settle_three_and_three_when_another_starts() {
    let mut nodes = Nodes::new().await;
    let a = nodes.start().await;
    let api_a = a.api(&nodes.token);
    let channels = pair_many(&api_a, 6).await;
    assert_eq!(api_a.sim_live().await.len(), 6, "the server that pairs a channel runs it");

    let b = nodes.start().await;
    let apis = [api_a, b.api(&nodes.token)];
    let sets = watch_until(&apis, Duration::from_secs(10), |sets| sizes(sets) == [3, 3]).await;
    let all: HashSet<String> = sets.iter().flatten().cloned().collect();
    assert_eq!(all, channels.into_iter().collect(), "every channel is live somewhere");
    // And it stays that way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sizes(&live_sets(&apis).await), [3, 3]);
}

#[tokio::test]
async fn a_text_sent_through_any_server_is_sent_once_by_the_server_that_runs_the_channel() {
    let mut nodes = Nodes::new().await;
    let (_a, _b, api_a, api_b) = nodes.two().await;
    let channels = pair_many(&api_a, 2).await;
    let apis = [api_a.clone(), api_b.clone()];
    watch_until(&apis, Duration::from_secs(10), |sets| sizes(sets) == [1, 1]).await;

    for channel in &channels {
        send_ok(&api_a, channel, &format!("via A to {channel}")).await;
        send_ok(&api_b, channel, &format!("via B to {channel}")).await;
    }
    for channel in &channels {
        let texts: Vec<String> =
            api_b.sim_inbox(channel).await.data.into_iter().map(|m| m.text).collect();
        assert_eq!(texts, [format!("via A to {channel}"), format!("via B to {channel}")]);
    }
}

#[tokio::test]
async fn a_stopped_server_hands_its_channels_over_within_2_s() {
    let mut nodes = Nodes::new().await;
    let (a, _b, api_a, api_b) = nodes.two().await;
    let channels = pair_many(&api_a, 4).await;
    let apis = [api_a, api_b.clone()];
    watch_until(&apis, Duration::from_secs(10), |sets| sizes(sets) == [2, 2]).await;

    let stopping = Instant::now();
    let exit = a.stop().await;
    assert!(exit.status.success());
    let b_only = [api_b.clone()];
    watch_until(&b_only, Duration::from_secs(2), |sets| sizes(sets) == [4]).await;
    assert!(stopping.elapsed() < Duration::from_secs(2), "took {:?}", stopping.elapsed());
    for channel in &channels {
        send_ok(&api_b, channel, "after the hand-over").await;
    }
}

#[tokio::test]
async fn the_channels_of_a_killed_server_are_claimed_within_20_s_and_send() {
    let mut nodes = Nodes::new().await;
    let (a, _b, api_a, api_b) = nodes.two().await;
    let channels = pair_many(&api_a, 4).await;
    let apis = [api_a, api_b.clone()];
    watch_until(&apis, Duration::from_secs(10), |sets| sizes(sets) == [2, 2]).await;

    let killed = Instant::now();
    a.kill().await;
    let b_only = [api_b.clone()];
    watch_until(&b_only, Duration::from_secs(20), |sets| sizes(sets) == [4]).await;
    assert!(killed.elapsed() < Duration::from_secs(20), "took {:?}", killed.elapsed());
    for channel in &channels {
        send_ok(&api_b, channel, "after the crash").await;
        let inbox = api_b.sim_inbox(channel).await.data;
        assert_eq!(inbox.len(), 1, "{inbox:?}");
    }
}

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

#[tokio::test]
async fn chaos_for_60_s_never_runs_a_channel_twice_nor_loses_or_repeats_a_message() {
    let seed = std::env::var("KEEBAI_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) * 2_654_435_761 + 1);
    eprintln!("chaos seed {seed} (KEEBAI_CHAOS_SEED replays it)");
    let mut dice = Dice(seed);
    let nodes = Nodes::new().await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers: Vec<Option<ServerProcess>> = Vec::new();
    for dir in &dirs {
        servers.push(Some(nodes.serve(dir.path()).spawn().await));
    }
    let api = |server: &ServerProcess| server.api(&nodes.token);
    let channels = pair_many(&api(servers[0].as_ref().unwrap()), 4).await;
    let live: Arc<Mutex<Vec<Api>>> =
        Arc::new(Mutex::new(servers.iter().flatten().map(api).collect()));

    let deadline = Instant::now() + Duration::from_secs(60);
    // Senders: texts through whichever servers are up, each text once, with its answer.
    let answers: Arc<Mutex<HashMap<String, u16>>> = Arc::default();
    let senders: Vec<_> = (0..2)
        .map(|sender| {
            let (live, answers, channels) = (live.clone(), answers.clone(), channels.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let apis = live.lock().unwrap().clone();
                    let api = &apis[(n as usize + sender) % apis.len()];
                    let channel = &channels[(n as usize * 7 + sender) % channels.len()];
                    let text = format!("s{sender}-{n}");
                    let body = json!({"channel_id": channel, "to": "+14155550100", "text": text});
                    let status = api
                        .client
                        .post(api.url("/v1/messages/text"))
                        .bearer_auth(&api.token)
                        .json(&body)
                        .timeout(Duration::from_secs(40))
                        .send()
                        .await
                        .map_or(0, |r| r.status().as_u16());
                    answers.lock().unwrap().insert(text, status);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .collect();
    // The sampler: no channel live on two servers, two samples in a row.
    let sampler = {
        let live = live.clone();
        tokio::spawn(async move {
            let mut suspect = HashSet::new();
            let mut samples = 0;
            while Instant::now() < deadline {
                let apis = live.lock().unwrap().clone();
                let sets = join_all(apis.iter().map(|api| async {
                    let got = api.client.get(api.url("/sim/live")).send().await;
                    match got {
                        Ok(r) if r.status() == StatusCode::OK => r
                            .json::<keebai_protocol::sim::SimLive>()
                            .await
                            .map(|l| l.data.into_iter().collect())
                            .unwrap_or_default(),
                        _ => HashSet::new(),
                    }
                }))
                .await;
                let twice = doubly_live(&sets);
                let confirmed: Vec<_> = twice.intersection(&suspect).cloned().collect();
                assert!(confirmed.is_empty(), "live on two servers: {confirmed:?} in {sets:?}");
                suspect = twice;
                samples += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            samples
        })
    };
    // The chaos: every 2-5 s a server is killed or stopped, and started again 1-3 s later.
    let mut actions = Vec::new();
    while Instant::now() + Duration::from_secs(8) < deadline {
        tokio::time::sleep(Duration::from_millis(2000 + dice.roll(3000))).await;
        let victim = dice.roll(3) as usize;
        let Some(server) = servers[victim].take() else { continue };
        let killed = dice.roll(2) == 0;
        *live.lock().unwrap() = servers.iter().flatten().map(api).collect::<Vec<_>>();
        if live.lock().unwrap().is_empty() {
            // Keep one server up, so that the senders always have somewhere to go.
            servers[victim] = Some(server);
            *live.lock().unwrap() = servers.iter().flatten().map(api).collect();
            continue;
        }
        if killed {
            server.kill().await;
        } else {
            server.stop().await;
        }
        actions.push(if killed { "kill" } else { "stop" });
        tokio::time::sleep(Duration::from_millis(1000 + dice.roll(2000))).await;
        servers[victim] = Some(nodes.serve(dirs[victim].path()).spawn().await);
        *live.lock().unwrap() = servers.iter().flatten().map(api).collect();
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let samples = sampler.await.unwrap();
    eprintln!("chaos: {actions:?}, {samples} samples");
    assert!(actions.len() >= 5, "enough chaos: {actions:?}");
    assert!(samples > 200, "sampled often: {samples}");

    // Every channel is live again somewhere; every accepted text arrived exactly once, and no
    // other text arrived twice.
    let apis: Vec<Api> = servers.iter().flatten().map(api).collect();
    watch_until(&apis, Duration::from_secs(20), |sets| {
        sets.iter().map(HashSet::len).sum::<usize>() == 4
    })
    .await;
    let mut arrived: HashMap<String, usize> = HashMap::new();
    for channel in &channels {
        for message in apis[0].sim_inbox(channel).await.data {
            *arrived.entry(message.text).or_default() += 1;
        }
    }
    let answers = answers.lock().unwrap().clone();
    let accepted = answers.values().filter(|s| **s == 202).count();
    eprintln!("chaos: {} texts, {accepted} accepted, {} arrived", answers.len(), arrived.len());
    assert!(accepted > 100, "enough traffic got through: {accepted}");
    for (text, status) in &answers {
        let times = arrived.get(text).copied().unwrap_or(0);
        if *status == 202 {
            assert_eq!(times, 1, "{text} was accepted");
        } else {
            assert!(times <= 1, "{text} ({status}) arrived {times} times");
        }
    }
    for (text, times) in &arrived {
        assert!(answers.contains_key(text) && *times == 1, "{text} arrived {times} times");
    }
}
