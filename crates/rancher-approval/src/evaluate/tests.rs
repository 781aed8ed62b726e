use super::*;
use crate::error::DirectoryError;
use chrono::TimeDelta;
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    "2025-01-01T00:00:00Z".parse().unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(minutes)
}

fn facts(requester: &str, installer: Option<&str>, targets: &[&str]) -> RequestFacts {
    RequestFacts {
        requester: requester.into(),
        installer: installer.map(Into::into),
        targets: targets.iter().map(|s| s.to_string()).collect(),
        expires_at: t0() + TimeDelta::days(7),
    }
}

fn vote(p: Principal, vote: Vote, minutes: i64) -> DecisionRecord {
    DecisionRecord {
        principal: p,
        vote,
        reason: None,
        decided_at: at(minutes),
        context: EligibilityContext::default(),
        content_hash: None,
    }
}

fn yes(id: &str, minutes: i64) -> DecisionRecord {
    vote(Principal::new(id), Vote::Approve, minutes)
}

fn no(id: &str, minutes: i64) -> DecisionRecord {
    vote(Principal::new(id), Vote::Deny, minutes)
}

fn with_ctx(mut d: DecisionRecord, fallback: &[&str]) -> DecisionRecord {
    d.context = EligibilityContext::with_fallback_approvers(fallback.iter().copied());
    d
}

fn now() -> DateTime<Utc> {
    at(60)
}

#[test]
fn none_policy_is_approved_at_once() {
    let f = facts("u-req", None, &[]);
    assert_eq!(evaluate(&Policy::none(), &f, &[], t0()), Verdict::Approved);
    assert!(check_eligibility(&Policy::none(), &f, &Principal::new("u-x"), &Default::default()).is_err());
}

#[test]
fn installer_must_approve() {
    let p = Policy::installer();
    let f = facts("u-req", Some("u-inst"), &[]);
    assert_eq!(evaluate(&p, &f, &[], now()), Verdict::Pending);
    assert_eq!(evaluate(&p, &f, &[yes("u-other", 1)], now()), Verdict::Pending);
    assert_eq!(evaluate(&p, &f, &[yes("u-inst", 1)], now()), Verdict::Approved);
    assert_eq!(
        evaluate(&p, &f, &[no("u-inst", 1), yes("u-inst", 2)], now()),
        Verdict::Denied
    );
    let err = check_eligibility(&p, &f, &Principal::new("u-other"), &Default::default()).unwrap_err();
    assert_eq!(
        err,
        Ineligibility::NotAnApprover {
            expected: "the installer, u-inst".into()
        }
    );
    // A fallback approver does not stand in while the installer can approve.
    let ctx = EligibilityContext::with_fallback_approvers(["u-admin"]);
    assert!(check_eligibility(&p, &f, &Principal::new("u-admin"), &ctx).is_err());
    assert_eq!(
        evaluate(&p, &f, &[with_ctx(yes("u-admin", 1), &["u-admin"])], now()),
        Verdict::Pending
    );
}

#[test]
fn installer_who_requested_waits_for_a_fallback_approver() {
    let p = Policy::installer();
    let f = facts("u-inst", Some("u-inst"), &[]);
    let ctx = EligibilityContext::with_fallback_approvers(["u-inst", "u-admin"]);
    assert_eq!(
        check_eligibility(&p, &f, &Principal::new("u-inst"), &ctx),
        Err(Ineligibility::SelfApproval)
    );
    assert_eq!(check_eligibility(&p, &f, &Principal::new("u-admin"), &ctx), Ok(()));
    assert_eq!(
        evaluate(&p, &f, &[with_ctx(yes("u-inst", 1), &["u-inst", "u-admin"])], now()),
        Verdict::Pending
    );
    assert_eq!(
        evaluate(&p, &f, &[with_ctx(yes("u-admin", 1), &["u-inst", "u-admin"])], now()),
        Verdict::Approved
    );
    // Somebody not in the fallback list at decision time does not count.
    assert_eq!(
        evaluate(&p, &f, &[with_ctx(yes("u-admin", 1), &["u-inst"])], now()),
        Verdict::Pending
    );
    let err = check_eligibility(&p, &f, &Principal::new("u-dev"), &ctx).unwrap_err();
    assert!(
        matches!(err, Ineligibility::NotAnApprover { ref expected } if expected.contains("fallback")),
        "{err}"
    );
}

#[test]
fn installer_self_approval_when_allowed() {
    let p = Policy::installer().allow_self_approval(true);
    let f = facts("u-inst", Some("u-inst"), &[]);
    assert_eq!(evaluate(&p, &f, &[yes("u-inst", 1)], now()), Verdict::Approved);
    // ...but then no fallback is needed, so an admin does not stand in.
    assert_eq!(
        evaluate(&p, &f, &[with_ctx(yes("u-admin", 1), &["u-admin"])], now()),
        Verdict::Pending
    );
}

#[test]
fn installer_without_fallback_cannot_be_replaced() {
    let p = Policy {
        rule: Rule::Installer { fallback: false },
        ..Policy::installer()
    };
    let f = facts("u-inst", Some("u-inst"), &[]);
    let d = [with_ctx(yes("u-admin", 1), &["u-admin"]), yes("u-inst", 2)];
    assert_eq!(evaluate(&p, &f, &d, now()), Verdict::Pending);
    assert_eq!(evaluate(&p, &f, &d, at(8 * 24 * 60)), Verdict::Expired);
    let err = check_eligibility(&p, &f, &Principal::new("u-admin"), &Default::default()).unwrap_err();
    assert!(err.to_string().contains("change the policy"), "{err}");
}

#[test]
fn installer_who_is_the_target_is_replaced_by_fallback() {
    let p = Policy::installer();
    let f = facts("u-req", Some("u-inst"), &["u-inst"]);
    let ctx = EligibilityContext::with_fallback_approvers(["u-admin"]);
    assert_eq!(
        check_eligibility(&p, &f, &Principal::new("u-inst"), &ctx),
        Err(Ineligibility::TargetOfRequest)
    );
    assert_eq!(
        evaluate(&p, &f, &[with_ctx(yes("u-admin", 1), &["u-admin"])], now()),
        Verdict::Approved
    );
    let p = p.allow_target_approval(true);
    assert_eq!(evaluate(&p, &f, &[yes("u-inst", 1)], now()), Verdict::Approved);
}

#[test]
fn no_installer_recorded_means_fallback() {
    let p = Policy::installer();
    let f = facts("u-req", None, &[]);
    assert_eq!(
        evaluate(&p, &f, &[with_ctx(yes("u-admin", 1), &["u-admin"])], now()),
        Verdict::Approved
    );
}

#[test]
fn any_of_users_and_groups() {
    let p = Policy::any_of([ApproverRef::user("u-a"), ApproverRef::group("github_team://1")]);
    let f = facts("u-req", None, &[]);
    assert_eq!(evaluate(&p, &f, &[yes("u-b", 1)], now()), Verdict::Pending);
    assert_eq!(evaluate(&p, &f, &[yes("u-a", 1)], now()), Verdict::Approved);
    let member = Principal::new("u-b").with_groups(["github_team://1"]);
    assert_eq!(
        evaluate(&p, &f, &[vote(member.clone(), Vote::Approve, 1)], now()),
        Verdict::Approved
    );
    assert_eq!(
        evaluate(&p, &f, &[vote(member, Vote::Deny, 1), yes("u-a", 2)], now()),
        Verdict::Denied
    );
    // A deny by somebody not in the list does not count.
    assert_eq!(
        evaluate(&p, &f, &[no("u-z", 1), yes("u-a", 2)], now()),
        Verdict::Approved
    );
}

#[test]
fn n_of_m_counts_distinct_principals() {
    let team = ApproverRef::group("github_team://platform");
    let p = Policy::at_least(2, [team]);
    let f = facts("u-req", None, &[]);
    let m = |id: &str| Principal::new(id).with_groups(["github_team://platform"]);
    let one = vote(m("u-1"), Vote::Approve, 1);
    assert_eq!(evaluate(&p, &f, std::slice::from_ref(&one), now()), Verdict::Pending);
    assert_eq!(
        evaluate(&p, &f, &[one.clone(), vote(m("u-1"), Vote::Approve, 2)], now()),
        Verdict::Pending
    );
    assert_eq!(
        evaluate(&p, &f, &[one, vote(m("u-2"), Vote::Approve, 2)], now()),
        Verdict::Approved
    );
}

#[test]
fn requester_never_counts_unless_allowed() {
    let team = ["u-req", "u-1"].map(ApproverRef::user);
    let p = Policy::at_least(2, team.clone());
    let f = facts("u-req", None, &[]);
    let d = [yes("u-req", 1), yes("u-1", 2)];
    assert_eq!(evaluate(&p, &f, &d, now()), Verdict::Pending);
    assert_eq!(
        evaluate(&p.clone().allow_self_approval(true), &f, &d, now()),
        Verdict::Approved
    );
    assert_eq!(
        check_eligibility(&p, &f, &Principal::new("u-req"), &Default::default()),
        Err(Ineligibility::SelfApproval)
    );
}

#[test]
fn targets_may_not_approve_unless_allowed() {
    let p = Policy::any_of(["u-req", "u-boss"].map(ApproverRef::user)).allow_self_approval(true);
    // The requester grants themselves admin: self-approval is allowed, but not approving a request that targets you.
    let f = facts("u-req", None, &["u-req"]);
    assert_eq!(
        check_eligibility(&p, &f, &Principal::new("u-req"), &Default::default()),
        Err(Ineligibility::TargetOfRequest)
    );
    assert_eq!(evaluate(&p, &f, &[yes("u-req", 1)], now()), Verdict::Pending);
    assert_eq!(
        evaluate(&p.clone().allow_target_approval(true), &f, &[yes("u-req", 1)], now()),
        Verdict::Approved
    );
    assert_eq!(evaluate(&p, &f, &[yes("u-boss", 1)], now()), Verdict::Approved);
}

#[test]
fn all_of_needs_a_distinct_approver_per_entry() {
    let p = Policy::all_of([ApproverRef::group("g://a"), ApproverRef::group("g://b")]);
    let f = facts("u-req", None, &[]);
    let both = Principal::new("u-1").with_groups(["g://a", "g://b"]);
    let only_a = Principal::new("u-2").with_groups(["g://a"]);
    assert_eq!(
        evaluate(&p, &f, &[vote(both.clone(), Vote::Approve, 1)], now()),
        Verdict::Pending
    );
    // u-1 covers b and u-2 covers a: the matching has to move u-1 off a.
    let d = [vote(both, Vote::Approve, 1), vote(only_a, Vote::Approve, 2)];
    assert_eq!(evaluate(&p, &f, &d, now()), Verdict::Approved);
}

#[test]
fn thresholds_combine_with_or_and_and() {
    let platform = Threshold::at_least(2, [ApproverRef::group("g://platform")]).labelled("platform team");
    let security = Threshold::at_least(1, [ApproverRef::user("u-sec")]);
    let f = facts("u-req", None, &[]);
    let m = |id: &str| Principal::new(id).with_groups(["g://platform"]);
    let two_platform = [vote(m("u-1"), Vote::Approve, 1), vote(m("u-2"), Vote::Approve, 2)];
    let any = Policy::approvers(Combine::Any, [platform.clone(), security.clone()]);
    assert_eq!(evaluate(&any, &f, &two_platform, now()), Verdict::Approved);
    assert_eq!(evaluate(&any, &f, &[yes("u-sec", 1)], now()), Verdict::Approved);
    let all = Policy::approvers(Combine::All, [platform, security]);
    assert_eq!(evaluate(&all, &f, &two_platform, now()), Verdict::Pending);
    assert_eq!(evaluate(&all, &f, &[yes("u-sec", 1)], now()), Verdict::Pending);
    let mut d = two_platform.to_vec();
    d.push(yes("u-sec", 3));
    assert_eq!(evaluate(&all, &f, &d, now()), Verdict::Approved);
}

#[test]
fn expiry_wins_over_late_approvals() {
    let p = Policy::any_of([ApproverRef::user("u-a")]).expires_after(std::time::Duration::from_secs(3600));
    let mut f = facts("u-req", None, &[]);
    f.expires_at = at(60);
    assert_eq!(evaluate(&p, &f, &[], at(59)), Verdict::Pending);
    assert_eq!(evaluate(&p, &f, &[], at(60)), Verdict::Expired);
    assert_eq!(evaluate(&p, &f, &[yes("u-a", 60)], at(61)), Verdict::Expired);
    assert_eq!(evaluate(&p, &f, &[no("u-a", 61)], at(61)), Verdict::Expired);
    // Approved in time stays approved after the expiry instant.
    assert_eq!(evaluate(&p, &f, &[yes("u-a", 59)], at(600)), Verdict::Approved);
}

#[test]
fn decisions_are_taken_in_time_order() {
    let p = Policy::any_of([ApproverRef::user("u-a"), ApproverRef::user("u-b")]);
    let f = facts("u-req", None, &[]);
    // Given out of order: the approval came first, so the later deny does not undo it.
    assert_eq!(
        evaluate(&p, &f, &[no("u-b", 5), yes("u-a", 1)], now()),
        Verdict::Approved
    );
    assert_eq!(evaluate(&p, &f, &[yes("u-a", 5), no("u-b", 1)], now()), Verdict::Denied);
}

struct Directory;

impl ApproverDirectory for Directory {
    fn fallback_approvers(&self) -> Result<Vec<String>, DirectoryError> {
        Ok(vec!["u-admin".into()])
    }
    fn is_member(&self, principal_id: &str, group_id: &str) -> Result<bool, DirectoryError> {
        match group_id {
            "g://down" => Err("directory unreachable".into()),
            _ => Ok(principal_id == "u-1" && group_id == "g://a"),
        }
    }
}

#[test]
fn resolve_reviewer_asks_only_what_the_policy_needs() {
    let (p, ctx) = resolve_reviewer(&Policy::installer(), &Principal::new("u-1"), &Directory).unwrap();
    assert_eq!(ctx.fallback_approvers, vec!["u-admin".to_string()]);
    assert!(p.groups.is_empty());

    let policy = Policy::any_of([ApproverRef::group("g://a"), ApproverRef::group("g://b")]);
    let (p, ctx) = resolve_reviewer(&policy, &Principal::new("u-1"), &Directory).unwrap();
    assert_eq!(p.groups, vec!["g://a".to_string()]);
    assert!(ctx.fallback_approvers.is_empty());
    let f = facts("u-req", None, &[]);
    assert_eq!(check_eligibility(&policy, &f, &p, &ctx), Ok(()));

    let policy = Policy::any_of([ApproverRef::group("g://down")]);
    let err = resolve_reviewer(&policy, &Principal::new("u-1"), &Directory).unwrap_err();
    assert!(matches!(err, Error::Directory { .. }), "{err}");
}

// ---- properties ----

const USERS: usize = 6;
const GROUPS: usize = 3;
const EXPIRY_MIN: i64 = 1_000;

fn uid(i: usize) -> String {
    format!("u-{i}")
}

fn gid(i: usize) -> String {
    format!("g://{i}")
}

#[derive(Debug, Clone)]
struct World {
    /// Group memberships per user (bit g set = member of group g).
    membership: Vec<u8>,
    requester: usize,
    installer: Option<usize>,
    targets: Vec<usize>,
    fallback: Vec<usize>,
}

impl World {
    fn principal(&self, i: usize) -> Principal {
        let groups = (0..GROUPS).filter(|g| self.membership[i] & (1 << g) != 0).map(gid);
        Principal::new(uid(i)).with_groups(groups)
    }
    fn facts(&self) -> RequestFacts {
        RequestFacts {
            requester: uid(self.requester),
            installer: self.installer.map(uid),
            targets: self.targets.iter().copied().map(uid).collect(),
            expires_at: at(EXPIRY_MIN),
        }
    }
    fn context(&self) -> EligibilityContext {
        EligibilityContext::with_fallback_approvers(self.fallback.iter().copied().map(uid))
    }
    fn decision(&self, who: usize, approve: bool, minute: i64) -> DecisionRecord {
        DecisionRecord {
            principal: self.principal(who),
            vote: if approve { Vote::Approve } else { Vote::Deny },
            reason: None,
            decided_at: at(minute),
            context: self.context(),
            content_hash: None,
        }
    }
    /// The personal bars, written out independently of the code under test.
    fn personally_ok(&self, p: &Policy, who: usize) -> bool {
        (who != self.requester || p.options.allow_self_approval)
            && (!self.targets.contains(&who) || p.options.allow_target_approval)
    }
}

fn world() -> impl Strategy<Value = World> {
    (
        proptest::collection::vec(0u8..(1 << GROUPS), USERS),
        0..USERS,
        proptest::option::of(0..USERS),
        proptest::collection::vec(0..USERS, 0..2),
        proptest::collection::vec(0..USERS, 0..3),
    )
        .prop_map(|(membership, requester, installer, targets, fallback)| World {
            membership,
            requester,
            installer,
            targets,
            fallback,
        })
}

fn approver_ref() -> impl Strategy<Value = ApproverRef> {
    prop_oneof![
        (0..USERS).prop_map(|i| ApproverRef::user(uid(i))),
        (0..GROUPS).prop_map(|g| ApproverRef::group(gid(g)))
    ]
}

fn threshold() -> impl Strategy<Value = Threshold> {
    (
        prop_oneof![(1u32..4).prop_map(Count::AtLeast), Just(Count::All)],
        proptest::collection::vec(approver_ref(), 1..4),
    )
        .prop_map(|(count, of)| Threshold { count, of, label: None })
}

fn policy() -> impl Strategy<Value = Policy> {
    let rule = prop_oneof![
        any::<bool>().prop_map(|fallback| Rule::Installer { fallback }),
        (any::<bool>(), proptest::collection::vec(threshold(), 1..3)).prop_map(|(all, thresholds)| {
            Rule::Approvers {
                combine: if all { Combine::All } else { Combine::Any },
                thresholds,
            }
        }),
    ];
    (rule, any::<bool>(), any::<bool>()).prop_map(|(rule, allow_self_approval, allow_target_approval)| {
        Policy {
            rule,
            ..Policy::installer()
        }
        .allow_self_approval(allow_self_approval)
        .allow_target_approval(allow_target_approval)
    })
}

/// Raw decisions: (who, approve?, minute), with minutes on both sides of the expiry.
fn raw_decisions() -> impl Strategy<Value = Vec<(usize, bool, i64)>> {
    proptest::collection::vec((0..USERS, any::<bool>(), 0..(2 * EXPIRY_MIN)), 0..12)
}

fn build(w: &World, raw: &[(usize, bool, i64)]) -> Vec<DecisionRecord> {
    raw.iter()
        .map(|&(who, approve, minute)| w.decision(who, approve, minute))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// N-of-M: approved exactly when enough distinct, personally eligible, listed principals approved in time
    /// (checked against an independent count, with no denies in play).
    #[test]
    fn no_approval_without_the_threshold(
        w in world(),
        n in 1u32..4,
        of in proptest::collection::vec(approver_ref(), 1..4),
        allow_self in any::<bool>(),
        allow_target in any::<bool>(),
        raw in raw_decisions(),
        now_min in 0..(2 * EXPIRY_MIN),
    ) {
        let p = Policy::at_least(n, of.clone()).allow_self_approval(allow_self).allow_target_approval(allow_target);
        let raw: Vec<_> = raw.into_iter().map(|(who, _, m)| (who, true, m)).collect();
        let d = build(&w, &raw);
        let mut counted: Vec<usize> = raw.iter()
            .filter(|(who, _, m)| *m < EXPIRY_MIN
                && w.personally_ok(&p, *who)
                && of.iter().any(|r| r.matches(&w.principal(*who))))
            .map(|(who, _, _)| *who)
            .collect();
        counted.sort_unstable();
        counted.dedup();
        let verdict = evaluate(&p, &w.facts(), &d, at(now_min));
        if counted.len() >= n as usize {
            prop_assert_eq!(verdict, Verdict::Approved);
        } else {
            prop_assert_ne!(verdict, Verdict::Approved);
        }
    }

    /// The installer rule: approved only with a timely approval by the installer, or by a fallback approver when
    /// the installer may not approve.
    #[test]
    fn installer_rule_needs_the_right_person(w in world(), fallback in any::<bool>(), allow_self in any::<bool>(),
                                             raw in raw_decisions(), now_min in 0..(2 * EXPIRY_MIN)) {
        let p = Policy { rule: Rule::Installer { fallback }, ..Policy::installer() }.allow_self_approval(allow_self);
        let d = build(&w, &raw);
        if evaluate(&p, &w.facts(), &d, at(now_min)) == Verdict::Approved {
            let installer_ok = w.installer.is_some_and(|i| w.personally_ok(&p, i));
            let ok = raw.iter().any(|&(who, approve, m)| approve && m < EXPIRY_MIN && w.personally_ok(&p, who) && (
                Some(who) == w.installer || (!installer_ok && fallback && w.fallback.contains(&who))));
            prop_assert!(ok);
        }
    }

    /// A single deny by an eligible reviewer, before anything else happened, denies whatever follows.
    #[test]
    fn a_single_eligible_deny_denies(w in world(), p in policy(), denier in 0..USERS, raw in raw_decisions(),
                                    now_min in 0..(2 * EXPIRY_MIN)) {
        let facts = w.facts();
        let eligible: Vec<usize> =
            (0..USERS).filter(|&i| check_eligibility(&p, &facts, &w.principal(i), &w.context()).is_ok()).collect();
        prop_assume!(!eligible.is_empty());
        let denier = eligible[denier % eligible.len()];
        let mut d = vec![w.decision(denier, false, 0)];
        d.extend(build(&w, &raw).into_iter().map(|mut r| { r.decided_at += TimeDelta::seconds(1); r }));
        prop_assert_eq!(evaluate(&p, &facts, &d, at(now_min)), Verdict::Denied);
    }

    /// The requester's own decisions change nothing unless self-approval is allowed.
    #[test]
    fn the_requester_never_counts(w in world(), p in policy(), raw in raw_decisions(),
                                  mine in proptest::collection::vec((any::<bool>(), 0..(2 * EXPIRY_MIN)), 1..5),
                                  now_min in 0..(2 * EXPIRY_MIN)) {
        let p = p.allow_self_approval(false);
        let facts = w.facts();
        let d = build(&w, &raw);
        let mut with_mine = d.clone();
        with_mine.extend(mine.iter().map(|&(approve, m)| w.decision(w.requester, approve, m)));
        prop_assert_eq!(evaluate(&p, &facts, &d, at(now_min)), evaluate(&p, &facts, &with_mine, at(now_min)));
        let only_mine: Vec<_> = mine.iter().map(|&(approve, m)| w.decision(w.requester, approve, m)).collect();
        prop_assert_ne!(evaluate(&p, &facts, &only_mine, at(now_min)), Verdict::Approved);
    }

    /// Decisions at or after the expiry change nothing, and a request nobody decided in time is expired.
    #[test]
    fn expiry_wins_over_late_decisions(w in world(), p in policy(), raw in raw_decisions(),
                                       late in proptest::collection::vec((0..USERS, any::<bool>(), 0..EXPIRY_MIN), 1..8),
                                       now_min in EXPIRY_MIN..(3 * EXPIRY_MIN)) {
        let facts = w.facts();
        let d = build(&w, &raw);
        let late: Vec<_> = late.iter().map(|&(who, approve, m)| w.decision(who, approve, EXPIRY_MIN + m)).collect();
        let mut with_late = d.clone();
        with_late.extend(late.iter().cloned());
        prop_assert_eq!(evaluate(&p, &facts, &d, at(now_min)), evaluate(&p, &facts, &with_late, at(now_min)));
        prop_assert_eq!(evaluate(&p, &facts, &late, at(now_min)), Verdict::Expired);
    }

    /// Evaluation does not depend on the order decisions are given in (ties aside), and never panics.
    #[test]
    fn order_of_input_does_not_matter(w in world(), p in policy(), raw in raw_decisions(),
                                      now_min in 0..(2 * EXPIRY_MIN)) {
        let mut raw = raw;
        raw.sort_by_key(|r| r.2);
        raw.dedup_by_key(|r| r.2);
        let d = build(&w, &raw);
        let mut reversed = d.clone();
        reversed.reverse();
        prop_assert_eq!(evaluate(&p, &w.facts(), &d, at(now_min)), evaluate(&p, &w.facts(), &reversed, at(now_min)));
    }
}
