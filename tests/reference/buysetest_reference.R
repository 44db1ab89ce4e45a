# Reference values for tests/design/test_win_ratio.py::test_matches_buysetest, run
# offline (R is a reference only, never a test or runtime dependency):
#   cd tests/reference && R_LIBS=/path/to/lib Rscript buysetest_reference.R \
#       > buysetest_reference.Rout 2>&1
#
# BuyseTest (Ozenne, Budtz-Jorgensen & Peron; github.com/bozenne/BuyseTest, commit
# 7bf1e49dc769877ec73377120ca7df62fc3365f3, version in DESCRIPTION printed below).
# Debian has no r-cran-buysetest; it was installed from that source tree with
# `R CMD INSTALL -l LIB` after deleting `doSNOW` and `riskRegression` from the
# Imports of its DESCRIPTION (both are called only as pkg::fun in parallel
# resampling and simultaneous bands, which these calls never reach; the scoring and
# the u-statistic inference are untouched).
#
# Data: 90 simulated patients (seeded below) written to buysetest_trial.csv: arm
# (0 control, 1 treated), survival time (months) and event flag, ALSFRS-R change
# over 12 months (NA unless known alive at 12), a binary response (some NA).
# Each case: BuyseTest(..., scoring.rule = "Gehan", method.inference =
# "u-statistic") with the defaults neutral.as.uninf = TRUE, correction.uninf = 0,
# order.Hprojection = 1; confint() with its default transformation (atanh for the
# net benefit, log for the win ratio).  Per priority (cumulative): favorable,
# unfavorable, neutral, uninf (not cumulative), net benefit and win ratio with se,
# CI and p-value; the win odds from add.halfNeutral = TRUE where no pair is left
# uninformative.
suppressMessages({library(BuyseTest); library(jsonlite)})
options(digits = 15)
cat("R", R.version$major, R.version$minor, " BuyseTest",
    as.character(packageVersion("BuyseTest")), " jsonlite",
    as.character(packageVersion("jsonlite")), "\n")
BuyseTest.options(trace = 0)

set.seed(20261207)
n <- 90
arm <- rep(c(0, 1), each = n / 2)
death <- round(rexp(n, rate = ifelse(arm == 1, 0.045, 0.07)), 1)
cens <- round(runif(n, 5, 16), 1)
time <- pmin(death, cens)
event <- as.integer(death <= cens)
alive12 <- time >= 12
change <- ifelse(alive12, round(rnorm(n, ifelse(arm == 1, -6, -8), 5)), NA)
response <- ifelse(runif(n) < 0.1, NA, as.integer(runif(n) < ifelse(arm == 1, 0.5, 0.35)))
full <- round(rnorm(n, ifelse(arm == 1, -6, -8), 5))
d <- data.frame(subject_id = sprintf("S%02d", 1:n), arm = arm, time = time,
                event = event, change = change, response = response, full = full)
write.csv(d, "buysetest_trial.csv", row.names = FALSE, na = "")
d <- read.csv("buysetest_trial.csv")

summarise <- function(bt) {
  fav <- coef(bt, statistic = "favorable", cumulative = FALSE)
  unf <- coef(bt, statistic = "unfavorable", cumulative = FALSE)
  neu <- coef(bt, statistic = "neutral", cumulative = FALSE)
  tab <- model.tables(bt, percentage = FALSE)
  nb <- confint(bt, statistic = "netBenefit")
  wr <- confint(bt, statistic = "winRatio")
  print(tab)
  print(nb)
  print(wr)
  list(
    favorable = unname(fav), unfavorable = unname(unf), neutral = unname(neu),
    n_pairs = unname(tab$total[1]),
    uninf_pairs = unname(tab$uninf),
    favorable_cum = unname(coef(bt, statistic = "favorable", cumulative = TRUE)),
    unfavorable_cum = unname(coef(bt, statistic = "unfavorable", cumulative = TRUE)),
    net_benefit = unname(nb[, "estimate"]), net_benefit_se = unname(nb[, "se"]),
    net_benefit_lower = unname(nb[, "lower.ci"]),
    net_benefit_upper = unname(nb[, "upper.ci"]),
    net_benefit_p = unname(nb[, "p.value"]),
    win_ratio = unname(wr[, "estimate"]), win_ratio_se = unname(wr[, "se"]),
    win_ratio_lower = unname(wr[, "lower.ci"]),
    win_ratio_upper = unname(wr[, "upper.ci"]),
    win_ratio_p = unname(wr[, "p.value"])
  )
}

run <- function(formula, ...) {
  BuyseTest(formula, data = d, scoring.rule = "Gehan",
            method.inference = "u-statistic", ...)
}

out <- list()
cat("\n== case surv12_change2: tte(time, event, restriction = 12) + cont(change, 2)\n")
out$surv12_change2 <- summarise(run(
  arm ~ tte(time, status = event, restriction = 12) + cont(change, threshold = 2)))
cat("\n== case surv3_binary_changelower: tte(threshold 3) + bin(response) + cont(change, <0)\n")
out$surv3_binary_changelower <- summarise(run(
  arm ~ tte(time, status = event, threshold = 3) + bin(response) +
    cont(change, operator = "<0")))
cat("\n== case full1: cont(full, threshold = 1)\n")
out$full1 <- summarise(run(arm ~ cont(full, threshold = 1)))
cat("\n== case full1_halfneutral (win odds): add.halfNeutral = TRUE\n")
bt <- run(arm ~ cont(full, threshold = 1), add.halfNeutral = TRUE)
wo <- confint(bt, statistic = "winRatio")
print(wo)
out$full1_halfneutral <- list(win_odds = unname(wo[, "estimate"]),
                              win_odds_se = unname(wo[, "se"]),
                              win_odds_lower = unname(wo[, "lower.ci"]),
                              win_odds_upper = unname(wo[, "upper.ci"]),
                              win_odds_p = unname(wo[, "p.value"]))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE,
                  na = "null"), "buysetest_reference.json")
cat("\nwritten buysetest_reference.json\n")
