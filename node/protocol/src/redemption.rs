//! Redemption at a merchant's till, priced in currency (issue #15): the
//! order the merchant signs, the merchant's acceptance policy (whose points
//! it takes, at what share of their value), and the pricing that turns an
//! order's value into points burnt and claims on their issuers.
//!
//! Values are exact integers throughout. A point of issuer `I` redeemed at
//! merchant `M` is worth `point_value_minor(I) × bps(M, I)` *value units*,
//! where one value unit is 1/10,000 of a centiminor (a hundredth of a
//! minor currency unit): `point_value_minor` is in centiminor per point and
//! a rate in basis points. An order of `v` minor units is `v × 1,000,000`
//! value units. Nothing is divided until a claim is booked, so the only
//! rounding is stated where it happens (docs/protocol.md §4).

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, Keypair, PublicKey, Signature};
use crate::encoding::{self, domain};
use crate::merchant::MerchantId;

/// A rate of 100 %, in basis points.
pub const BPS_FULL: u16 = 10_000;
/// Value units per minor currency unit (100 centiminor × 10,000 bps).
pub const VALUE_UNITS_PER_MINOR: u128 = 1_000_000;
/// Value units per centiminor (one basis point of a centiminor each).
pub const VALUE_UNITS_PER_CENTIMINOR: u128 = BPS_FULL as u128;

/// What a merchant's till asks a customer to approve: redeem points worth
/// `value_minor` for order `order_ref`. The merchant signs it
/// ([`OrderRequest::sign`]); the customer puts it, with that signature, in a
/// [`TxBody::RedeemOrder`](crate::TxBody::RedeemOrder) and signs the
/// transaction. No claim on another issuer arises without both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// The redeeming merchant.
    pub merchant: MerchantId,
    /// The key the merchant signs with; it must be the merchant's key in
    /// the state when the redemption executes.
    pub merchant_key: PublicKey,
    /// The customer who pays (the transaction's signer).
    pub customer: PublicKey,
    /// The merchant's order reference: one redemption per (merchant,
    /// order_ref) within the receipt window.
    pub order_ref: String,
    /// What the points pay for, in minor currency units (e.g. fen).
    pub value_minor: u64,
    /// Issuers whose points to spend, in this order; empty means every
    /// accepted issuer, lots closest to expiry first.
    pub issuers: Vec<MerchantId>,
    /// The request is void after this time (ms since the Unix epoch, block
    /// time), and at most [`ORDER_VALIDITY_MS_MAX`](crate::limits::ORDER_VALIDITY_MS_MAX)
    /// ahead of the block that executes it: a signed request cannot be
    /// replayed once its order reference has left the window.
    pub valid_until_ms: u64,
}

/// The merchant's signed part, borrowed.
#[derive(Serialize)]
struct OrderPayload<'a> {
    chain_id: &'a str,
    order: &'a OrderRequest,
}

impl OrderRequest {
    /// The hash the merchant signs: the domain, the chain id and the request.
    pub fn signing_hash(&self, chain_id: &str) -> Hash32 {
        encoding::hash_value(
            domain::ORDER_SIGN,
            &OrderPayload {
                chain_id,
                order: self,
            },
        )
    }

    /// The merchant's signature over this request on `chain_id`.
    pub fn sign(&self, chain_id: &str, merchant: &Keypair) -> Signature {
        merchant.sign(&self.signing_hash(chain_id).0)
    }

    /// Whether `signature` is the merchant key's over this request.
    pub fn verify(&self, chain_id: &str, signature: &Signature) -> bool {
        crate::sigverify::verify(
            &self.merchant_key,
            &self.signing_hash(chain_id).0,
            signature,
        )
    }
}

/// The text form of a signed request starts with this.
pub const REQUEST_PREFIX: &str = "pa-order:";

/// A merchant's request with its signature, as the till hands it to the
/// customer's wallet: [`SignedOrder::to_text`] is `pa-order:` and the hex of
/// the canonical encoding of `(order, signature)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOrder {
    /// The request.
    pub order: OrderRequest,
    /// The merchant's signature over it.
    pub signature: Signature,
}

impl SignedOrder {
    /// The text form (one line, ASCII).
    pub fn to_text(&self) -> String {
        format!("{REQUEST_PREFIX}{}", hex::encode(encoding::encode(self)))
    }

    /// Parses the text form; refuses anything but the canonical encoding
    /// (the signature is not checked here: [`OrderRequest::verify`]).
    pub fn from_text(text: &str) -> Result<SignedOrder, String> {
        let hex_part = text
            .trim()
            .strip_prefix(REQUEST_PREFIX)
            .ok_or_else(|| format!("a payment request starts with `{REQUEST_PREFIX}`"))?;
        let bytes = hex::decode(hex_part)
            .map_err(|e| format!("the payment request is not valid hex: {e}"))?;
        encoding::decode(&bytes, crate::limits::TX_BYTES_MAX)
            .map_err(|e| format!("the payment request does not decode: {e}"))
    }
}

/// One accepted issuer and the share of its points' value the merchant
/// honours, in basis points (1 to 10,000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptanceRate {
    /// The issuer.
    pub issuer: MerchantId,
    /// Its rate, 1..=10,000 basis points.
    pub bps: u16,
}

/// What a merchant takes: other issuers' points for its goods and services
/// (`rates`), and into its own points (`conversions`). Each list is sorted
/// by issuer with no issuer twice, and never names the merchant itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptanceTerms {
    /// Issuers whose points pay for orders, at these rates. Empty: the
    /// alliance default, every active issuer at 100 %.
    pub rates: Vec<AcceptanceRate>,
    /// Issuers whose points a customer may convert into this merchant's, at
    /// these rates. Empty: none (a conversion creates the merchant's own
    /// liability, so it is offered only by choice).
    pub conversions: Vec<AcceptanceRate>,
}

/// A merchant's acceptance policy as the state holds it: the terms in
/// force, and a change announced for a future height.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acceptance {
    /// Terms in force.
    pub terms: AcceptanceTerms,
    /// A change and the height from which it applies.
    pub next: Option<(u64, AcceptanceTerms)>,
}

impl Acceptance {
    /// The terms in force at `height`.
    pub fn at(&self, height: u64) -> &AcceptanceTerms {
        match &self.next {
            Some((from, terms)) if *from <= height => terms,
            _ => &self.terms,
        }
    }

    /// The policy with any change effective at `height` folded in.
    pub fn settled(mut self, height: u64) -> Acceptance {
        if let Some((from, terms)) = self.next.take() {
            if from <= height {
                self.terms = terms;
            } else {
                self.next = Some((from, terms));
            }
        }
        self
    }
}

/// The rate at which `merchant`, with `rates` in force, takes `issuer`'s
/// points for an order: its own always at 100 %; with an empty list every
/// issuer at 100 % (the alliance default); otherwise the listed rate, or
/// `None`.
pub fn rate_for(
    merchant: &MerchantId,
    rates: &[AcceptanceRate],
    issuer: &MerchantId,
) -> Option<u16> {
    if issuer == merchant || rates.is_empty() {
        return Some(BPS_FULL);
    }
    listed_rate(rates, issuer)
}

/// The listed rate of `issuer` in `rates` (sorted by issuer), if any: a
/// conversion rate has no default.
pub fn listed_rate(rates: &[AcceptanceRate], issuer: &MerchantId) -> Option<u16> {
    rates
        .binary_search_by(|r| r.issuer.cmp(issuer))
        .ok()
        .map(|i| rates[i].bps)
}

/// Points of issuer A to burn for `points` of issuer B in a conversion at
/// `bps`: the fewest whose value at the rate covers the new points' value,
/// `⌈points × value(B) × 10,000 / (value(A) × bps)⌉` (the customer gives
/// less than one point of A too much, never too little). `None` on overflow.
pub fn points_to_convert(points: u64, value_b: u64, value_a: u64, bps: u16) -> Option<u64> {
    let need = (points as u128 * value_b as u128).checked_mul(BPS_FULL as u128)?;
    let unit = value_a as u128 * bps as u128;
    assert!(unit > 0, "a converted point has a value");
    u64::try_from(need.div_ceil(unit)).ok()
}

/// The value of `points` at `point_value_minor` and `bps`, in value units.
pub fn value_units(points: u64, point_value_minor: u64, bps: u16) -> u128 {
    points as u128 * point_value_minor as u128 * bps as u128
}

/// The claim a creditor books for `points` at `point_value_minor` and `bps`:
/// their value in centiminor, rounded down (the debtor never pays for a
/// fraction of a centiminor). `None` on overflow of `u64`.
pub fn claim_centiminor(points: u64, point_value_minor: u64, bps: u16) -> Option<u64> {
    u64::try_from(value_units(points, point_value_minor, bps) / VALUE_UNITS_PER_CENTIMINOR).ok()
}

/// Points of one issuer a customer offers, in spend order, with their
/// value per point in value units (`point_value_minor × bps`, positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// Points in the lot.
    pub points: u64,
    /// Value units per point.
    pub unit_value: u128,
}

/// Points to burn from each offered lot, in order, to pay `value_minor`:
/// whole lots while the order is not covered, then the fewest points of the
/// next lot that cover the rest (so the customer pays less than one point
/// of that lot too much, never too little). `None` when the offers do not
/// cover the order.
pub fn points_to_burn(offers: &[Offer], value_minor: u64) -> Option<Vec<u64>> {
    let mut left = value_minor as u128 * VALUE_UNITS_PER_MINOR;
    let mut burn = Vec::with_capacity(offers.len());
    for offer in offers {
        assert!(offer.unit_value > 0, "an offered point has a value");
        if left == 0 {
            break;
        }
        let lot_value = offer.points as u128 * offer.unit_value;
        if lot_value <= left {
            burn.push(offer.points);
            left -= lot_value;
        } else {
            let n = left.div_ceil(offer.unit_value);
            debug_assert!(n <= offer.points as u128);
            burn.push(n as u64);
            left = 0;
        }
    }
    (left == 0).then_some(burn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> MerchantId {
        MerchantId::new(s).unwrap()
    }

    #[test]
    fn a_signed_request_round_trips_as_text_and_nothing_else_parses() {
        let key = Keypair::from_label("books");
        let order = OrderRequest {
            merchant: id("books"),
            merchant_key: key.public(),
            customer: Keypair::from_label("alice").public(),
            order_ref: "O-1".into(),
            value_minor: 1_250,
            issuers: vec![id("coffee")],
            valid_until_ms: 1_700_000_060_000,
        };
        let signed = SignedOrder {
            signature: order.sign("c", &key),
            order,
        };
        let text = signed.to_text();
        assert!(text.starts_with(REQUEST_PREFIX));
        assert_eq!(
            SignedOrder::from_text(&format!(" {text}\n")),
            Ok(signed.clone())
        );
        assert!(signed.order.verify("c", &signed.signature));
        assert!(!signed.order.verify("other", &signed.signature));
        assert!(SignedOrder::from_text(&text[1..]).is_err());
        assert!(
            SignedOrder::from_text(&format!("{text}00")).is_err(),
            "trailing bytes"
        );
        assert!(
            SignedOrder::from_text(&text[..text.len() - 2]).is_err(),
            "truncated"
        );
    }

    #[test]
    fn own_points_and_the_default_are_at_face_value() {
        let rates = vec![AcceptanceRate {
            issuer: id("coffee"),
            bps: 9_000,
        }];
        assert_eq!(rate_for(&id("books"), &[], &id("cinema")), Some(BPS_FULL));
        assert_eq!(rate_for(&id("books"), &rates, &id("books")), Some(BPS_FULL));
        assert_eq!(rate_for(&id("books"), &rates, &id("coffee")), Some(9_000));
        assert_eq!(rate_for(&id("books"), &rates, &id("cinema")), None);
        assert_eq!(
            listed_rate(&[], &id("cinema")),
            None,
            "no default conversion"
        );
        assert_eq!(listed_rate(&rates, &id("coffee")), Some(9_000));
    }

    #[test]
    fn a_change_applies_from_its_height() {
        let a = Acceptance {
            terms: AcceptanceTerms::default(),
            next: Some((
                10,
                AcceptanceTerms {
                    rates: vec![AcceptanceRate {
                        issuer: id("coffee"),
                        bps: 9_000,
                    }],
                    conversions: vec![],
                },
            )),
        };
        assert!(a.at(9).rates.is_empty());
        assert_eq!(a.at(10).rates.len(), 1);
        assert_eq!(a.clone().settled(9), a);
        let s = a.settled(10);
        assert_eq!(s.terms.rates.len(), 1);
        assert_eq!(s.next, None);
    }

    #[test]
    fn a_conversion_takes_the_fewest_points_that_cover_the_new_ones() {
        // 100 books points worth 1.00 from cinema points worth 0.50 per
        // 100, converted at 80 %: 1.00 / (0.005 × 0.8) = 250 exactly.
        assert_eq!(points_to_convert(100, 100, 50, 8_000), Some(250));
        // 1 books point from coffee points at 90 %: 1 / 0.9 = 1.1 -> 2.
        assert_eq!(points_to_convert(1, 100, 100, 9_000), Some(2));
        assert_eq!(points_to_convert(u64::MAX, u64::MAX, 1, 1), None);
    }

    #[test]
    fn ninety_percent_of_coffee_points_pay_a_yuan() {
        // Coffee points worth 1 fen each (100 centiminor), accepted at 90 %:
        // 1.00 yuan = 100 fen needs 100 / 0.9 = 111.1 -> 112 points.
        let offers = [Offer {
            points: 500,
            unit_value: 100 * 9_000,
        }];
        assert_eq!(points_to_burn(&offers, 100), Some(vec![112]));
        assert_eq!(claim_centiminor(112, 100, 9_000), Some(10_080));
        assert_eq!(points_to_burn(&offers, 451), None);
    }

    proptest! {
        /// The points burnt cover the order, by less than one point of the
        /// last lot touched; earlier lots go whole; nothing is over-taken.
        #[test]
        fn burning_covers_the_order_by_less_than_one_point(
            lots in prop::collection::vec((1u64..1_000, 1u64..10_000, 1u16..=10_000), 1..6),
            value_minor in 0u64..200_000,
        ) {
            let offers: Vec<Offer> = lots
                .iter()
                .map(|(p, v, b)| Offer { points: *p, unit_value: *v as u128 * *b as u128 })
                .collect();
            let total: u128 = offers.iter().map(|o| o.points as u128 * o.unit_value).sum();
            let need = value_minor as u128 * VALUE_UNITS_PER_MINOR;
            match points_to_burn(&offers, value_minor) {
                None => prop_assert!(total < need),
                Some(burn) => {
                    prop_assert!(burn.len() <= offers.len());
                    let paid: u128 = burn.iter().zip(&offers).map(|(n, o)| *n as u128 * o.unit_value).sum();
                    prop_assert!(paid >= need);
                    if let Some((last, o)) = burn.iter().zip(&offers).next_back() {
                        prop_assert!(paid - need < o.unit_value, "overpaid by a point or more");
                        prop_assert!(*last <= o.points);
                    }
                    for (n, o) in burn.iter().zip(&offers).rev().skip(1) {
                        prop_assert_eq!(*n, o.points);
                    }
                }
            }
        }
    }
}
