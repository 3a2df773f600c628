//! Spending limits, checked before anything is paid.

use l402::Msat;

use crate::ClientError;

/// How much the client may spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Most one request may cost (the invoice amount).
    pub max_per_request: Msat,
    /// Most routing fee one payment may cost.
    pub max_fee: Msat,
    /// Most spent on one origin within 24 hours (fees included).
    pub max_per_host_per_day: Option<Msat>,
    /// Most spent in total, ever, by this store (fees included).
    pub max_total: Option<Msat>,
}

impl Default for Budget {
    /// 1000 sat per request and 10 sat of fees (Aperture's client defaults), no daily or total
    /// limit.
    fn default() -> Self {
        Budget {
            max_per_request: Msat::from_sat(1000),
            max_fee: Msat::from_sat(10),
            max_per_host_per_day: None,
            max_total: None,
        }
    }
}

impl Budget {
    /// Refuses a price above the per-request limit.
    pub(crate) fn check_price(&self, amount: Msat) -> Result<(), ClientError> {
        if amount > self.max_per_request {
            return Err(ClientError::OverBudget {
                reason: format!(
                    "the price {amount} msat exceeds the limit of {} msat per request",
                    self.max_per_request
                ),
            });
        }
        Ok(())
    }

    /// Refuses `amount` (plus the worst-case fee) for `origin` when what is already committed
    /// (`spent_on_origin` in the last 24 hours, `spent_total` ever; pending payments counted at
    /// their worst-case fee) leaves no room for it.
    pub(crate) fn check_spent(
        &self,
        origin: &str,
        amount: Msat,
        spent_on_origin: Msat,
        spent_total: Msat,
    ) -> Result<(), ClientError> {
        self.check_price(amount)?;
        let worst = amount.saturating_add(self.max_fee);
        if let Some(limit) = self.max_per_host_per_day {
            let spent = spent_on_origin;
            if spent.saturating_add(worst) > limit {
                return Err(ClientError::OverBudget {
                    reason: format!(
                        "{origin} already cost {spent} msat in the last 24 h; {worst} msat more (with fees) would pass the daily limit of {limit} msat"
                    ),
                });
            }
        }
        if let Some(limit) = self.max_total {
            let spent = spent_total;
            if spent.saturating_add(worst) > limit {
                return Err(ClientError::OverBudget {
                    reason: format!(
                        "{spent} msat spent so far; {worst} msat more (with fees) would pass the total limit of {limit} msat"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether any limit needs the journal's totals.
    pub(crate) fn needs_totals(&self) -> bool {
        self.max_per_host_per_day.is_some() || self.max_total.is_some()
    }
}
