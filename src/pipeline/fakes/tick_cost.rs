//! What one scheduled tick costs with 10, 100 and 1,000 open incidents, counted on the
//! fakes: the ledger operations, the EC2 and Auto Scaling calls and the messages of the
//! tick alone (`docs/benchmarks.md` has the table). Incidents held behind an open breaker or
//! held until later cost nothing each; due holds cost a round each.

use super::{alarm, tick, Bench, Machine, Seen, SAMPLE_ALARM_MS as ALARM_MS};
use crate::model::facts::{Check, Checks};

const IMPAIRED: Checks = Checks {
    system: Check::Impaired,
    instance: Check::Ok,
};

/// How the incidents stand when the tick comes.
#[derive(Debug, Clone, Copy)]
enum Standing {
    /// Held behind their zone's open breaker.
    BehindBreaker,
    /// In their grace period: held until later.
    HeldUntilLater,
    /// Past their grace, EC2 not confirming the alarm: due, each looked at.
    Due,
}

/// (ledger operations, fleet calls, messages) of one tick with `n` incidents standing so.
async fn tick_cost(n: usize, standing: Standing) -> (usize, usize, usize) {
    // The zone breaker trips above 3: three repairs start, the rest are held behind it.
    let extra = match standing {
        Standing::BehindBreaker => 3,
        _ => 0,
    };
    let checks = match standing {
        Standing::Due => Checks::default(),
        _ => IMPAIRED,
    };
    let ids: Vec<String> = (0..n + extra).map(|i| format!("i-{i:017x}")).collect();
    let machines = ids
        .iter()
        .map(|id| Machine::running(id, checks).in_zone("us-east-1a"))
        .collect();
    let zone = match standing {
        Standing::BehindBreaker => [
            ("AUTOHEAL_ZONE_BREAKER_COUNT", "3"),
            ("AUTOHEAL_ZONE_BREAKER_PERCENT", "off"),
        ],
        _ => [
            ("AUTOHEAL_ZONE_BREAKER_COUNT", "off"),
            ("AUTOHEAL_ZONE_BREAKER_PERCENT", "off"),
        ],
    };
    let env = [
        zone[0],
        zone[1],
        ("AUTOHEAL_ACCOUNT_MAX_REPAIRS", "off"),
        ("AUTOHEAL_ACCOUNT_BREAKER_COUNT", "off"),
        ("AUTOHEAL_BACKUP_SELECTOR", "app=db"),
        ("AUTOHEAL_ALARMS", "off"),
    ];
    let late = matches!(standing, Standing::BehindBreaker);
    let b = Bench::new(
        &env,
        machines,
        ALARM_MS + if late { 200_000 } else { 1_000 },
    );
    for id in &ids {
        b.invoke(&alarm(id)).await.unwrap();
    }
    b.deps.clock.advance(match standing {
        Standing::Due => 200_000,
        _ => 30_000,
    });
    let (ops, seen) = (b.store.total_calls(), b.journal.all().len());
    b.invoke(&tick()).await.unwrap();
    let journal = b.journal.all();
    let calls = journal[seen..]
        .iter()
        .filter(|s| matches!(s, Seen::Called { .. }))
        .count();
    let told = journal[seen..]
        .iter()
        .filter(|s| matches!(s, Seen::Told(_)))
        .count();
    (b.store.total_calls() - ops, calls, told)
}

#[tokio::test]
async fn a_ticks_cost_follows_the_work_not_the_holds() {
    let mut rows = vec![];
    for standing in [
        Standing::BehindBreaker,
        Standing::HeldUntilLater,
        Standing::Due,
    ] {
        let mut costs = vec![];
        for n in [10, 100, 1000] {
            let cost = tick_cost(n, standing).await;
            rows.push(format!("{standing:?} {n}: {cost:?}"));
            costs.push(cost);
        }
        match standing {
            // Nothing per incident held: the same cost with 10 as with 1,000 (behind the
            // breaker, the three repairs it let through before it opened are the work).
            Standing::BehindBreaker | Standing::HeldUntilLater => {
                assert!(costs.iter().all(|c| *c == costs[0]), "{rows:#?}");
            }
            // A round each: claimed, observed, held again, told once.
            Standing::Due => {
                let (ops, calls, told) = costs[2];
                assert!(ops >= 2000 && calls >= 1000 && told == 1000, "{rows:#?}");
            }
        }
    }
    // The figures for docs/benchmarks.md: `cargo test --lib tick_cost -- --nocapture`.
    eprintln!("{}", rows.join("\n"));
}
