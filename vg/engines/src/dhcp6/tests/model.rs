//! A randomised check of well-formed sessions against what a client may rely on: every
//! lease a Reply grants is bound to that IA in the engine and in the store, no lease is
//! bound to two IAs, no client exceeds its limit, and a client asking again right after
//! releasing everything gets those leases back.

use std::collections::HashMap;

use super::*;

#[test]
fn random_sessions_keep_the_promises_made() {
    let mut s = server_with(|s| {
        s.iid_end = 0x1007;
        s.delegated = Some(net("2001:db8:0:100::/61"));
        s.pd_len = 64;
        s.max_leases_per_client = 2;
    });
    let clients: Vec<Client> = (1..=12)
        .map(|n| {
            let mut c = Client::new(n).with_pd();
            c.na = vec![1, u32::from(n % 3) + 2];
            c
        })
        .collect();
    let store = MemoryStore::new();
    // What each client was last told it holds, by (kind, IAID).
    let mut holds: HashMap<u8, Vec<Lease>> = HashMap::new();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut now = T0;
    let (mut grants, mut sticky_checks) = (0, 0);
    for _ in 0..5_000 {
        let r = next();
        let n = (r % clients.len() as u64) as usize;
        let c = &clients[n];
        let held = holds.get(&(n as u8)).cloned().unwrap_or_default();
        now = now.plus((r >> 8) % 3_000);
        let bytes = match (r >> 16) % 7 {
            0 => c.solicit_rapid(),
            1 => c.request(&held),
            2 => c.renew(&held),
            3 => c.rebind(&held),
            4 => c.release(&held),
            5 => c.decline(&held),
            _ => {
                commit(s.expire(now), &store);
                continue;
            }
        };
        let kind = bytes[0];
        let mut bound_before: Vec<Lease> = s
            .bindings()
            .filter(|r| r.state == BindingState::Bound && r.duid.as_bytes() == &c.duid[..])
            .map(|r| r.lease)
            .collect();
        bound_before.sort();
        let Ok(out) = s.handle_bytes(now, c.peer(), &bytes) else {
            panic!("a well-formed message was dropped");
        };
        let msg = reply(&out, c);
        commit(out, &store);
        s.check_consistency().expect("consistent");
        let granted = granted(&msg);
        grants += granted.len();
        for lease in &granted {
            let record = s.binding(lease).expect("a granted lease is bound");
            assert_eq!(record.state, BindingState::Bound);
            assert_eq!(record.duid.as_bytes(), &c.duid[..]);
            assert_eq!(store.get(HOME, *lease).as_ref(), Some(record), "durable");
        }
        let mut distinct = granted.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), granted.len(), "one lease to two IAs");
        for kind in [IaKind::Na, IaKind::Pd] {
            let mine = s
                .bindings()
                .filter(|r| {
                    r.kind() == kind
                        && r.state == BindingState::Bound
                        && r.duid.as_bytes() == &c.duid[..]
                })
                .count();
            assert!(mine <= 2, "client over its limit");
        }
        match kind {
            // Release of everything it holds: asking again at once gives it all back.
            8 if !held.is_empty() && {
                let mut h = held.clone();
                h.sort();
                h == bound_before
            } =>
            {
                sticky_checks += 1;
                let out = handle(&mut s, now, c, &c.solicit_rapid());
                let again = granted_of(&out, c);
                commit(out, &store);
                // (IAs that got nothing before may get something now.)
                for lease in &bound_before {
                    assert!(
                        again.contains(lease),
                        "sticky after release: {lease} {again:?}"
                    );
                }
                holds.insert(n as u8, again);
            }
            8 | 9 => {
                holds.insert(n as u8, Vec::new());
            }
            _ if !granted.is_empty() => {
                holds.insert(n as u8, granted);
            }
            _ => {}
        }
    }
    // The walk did exercise what it checks.
    assert!(grants > 1_000, "{grants} leases granted");
    assert!(sticky_checks > 50, "{sticky_checks} releases checked");
}

fn granted_of(out: &Outcome, c: &Client) -> Vec<Lease> {
    granted(&reply(out, c))
}
