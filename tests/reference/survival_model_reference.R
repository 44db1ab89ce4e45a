# Predictions of alsprog's SurvivalModel against R (issue 25).
# Run from tests/reference:  Rscript survival_model_reference.R > survival_model_reference.Rout 2>&1
# Royston-Parmar (hazard scale, df 3, lung: age, sex, ph.ecog): the estimates of the
# hand-coded likelihood in royston_parmar_reference.R (read from its JSON), the
# covariance from optimHess of that same likelihood (with its analytic gradient)
# written again here, then for
# five patients: S(t | x) at t = 100, 300, 500 days, the 95% interval by the delta
# method on log(-log S) (numerical gradient), S(500)/S(200) (alive at day 200), and
# the median (uniroot).  Cox (Efron): survfit(coxph(...), newdata) at the same times
# and its median.
suppressPackageStartupMessages({library(jsonlite); library(survival)})
lung <- read.csv("lung.csv")
ref <- fromJSON("royston_parmar_reference.json")$lung_hazard_df3
rcs <- function(z, knots) {
  kmin <- knots[1]; kmax <- knots[length(knots)]; inner <- knots[-c(1, length(knots))]
  pos <- function(u) pmax(u, 0)^3
  cbind(1, z, sapply(inner, function(k) {
    lam <- (kmax - k) / (kmax - kmin)
    pos(z - k) - lam * pos(z - kmin) - (1 - lam) * pos(z - kmax)
  }))
}
drcs <- function(z, knots) {
  kmin <- knots[1]; kmax <- knots[length(knots)]; inner <- knots[-c(1, length(knots))]
  dpos <- function(u) 3 * pmax(u, 0)^2
  cbind(0, 1, sapply(inner, function(k) {
    lam <- (kmax - k) / (kmax - kmin)
    dpos(z - k) - lam * dpos(z - kmin) - (1 - lam) * dpos(z - kmax)
  }))
}
X <- as.matrix(lung[, c("age", "sex", "ph.ecog")])
knots <- ref$knots; theta <- ref$theta; ng <- length(knots)
negll <- function(th) {
  g <- th[1:ng]; b <- th[-(1:ng)]; z <- log(lung$time)
  eta <- as.vector(rcs(z, knots) %*% g) + as.vector(X %*% b)
  ds <- as.vector(drcs(z, knots) %*% g)
  -sum(lung$event * (eta + log(ds) - z) - exp(eta))
}
negll_grad <- function(th) {  # the analytic gradient, so the Hessian is accurate
  g <- th[1:ng]; b <- th[-(1:ng)]; z <- log(lung$time)
  B <- rcs(z, knots); dB <- drcs(z, knots)
  eta <- as.vector(B %*% g) + as.vector(X %*% b); ds <- as.vector(dB %*% g)
  w <- lung$event - exp(eta)
  -c(colSums(B * w) + colSums(dB * (lung$event / ds)), colSums(X * w))
}
V <- solve(optimHess(theta, negll, gr = negll_grad,
                     control = list(ndeps = rep(1e-6, length(theta)))))  # default 1e-3 is coarse for age
logS <- function(th, t, x) -exp(as.vector(rcs(log(c(t, t)), knots) %*% th[1:ng])[1] + sum(x * th[-(1:ng)]))  # two rows: sapply keeps a matrix
numgrad <- function(f, th) sapply(seq_along(th), function(j) {
  h <- 1e-6 * max(1, abs(th[j])); e <- replace(numeric(length(th)), j, h)
  (f(th + e) - f(th - e)) / (2 * h)
})
pats <- 1:5; times <- c(100, 300, 500)
rp <- list(); for (i in pats) {
  x <- X[i, ]
  for (t in times) {
    w <- function(th) log(-logS(th, t, x))
    gw <- numgrad(w, theta); se <- sqrt(sum(gw * (V %*% gw)))
    rp[[length(rp) + 1]] <- list(patient = i, time = t, survival = exp(logS(theta, t, x)),
      lower = exp(-exp(w(theta) + qnorm(0.975) * se)), upper = exp(-exp(w(theta) - qnorm(0.975) * se)))
  }
}
cond <- sapply(pats, function(i) exp(logS(theta, 500, X[i, ]) - logS(theta, 200, X[i, ])))
med <- sapply(pats, function(i) uniroot(function(lt) logS(theta, exp(lt), X[i, ]) - log(0.5),
                                          c(0, 10), tol = 1e-12)$root)
cox <- coxph(Surv(time, event) ~ age + sex + ph.ecog, data = lung, ties = "efron")
sf <- survfit(cox, newdata = lung[pats, ])
cs <- summary(sf, times = times)
out <- list(rp_se = sqrt(diag(V)), rp_predictions = rp, rp_conditional_500_given_200 = cond, rp_median = exp(med),
            cox_survival = unname(t(cs$surv)), cox_median = unname(quantile(sf, 0.5)$quantile),
            times = times, patients = pats)
print(out[c("rp_conditional_500_given_200", "rp_median", "cox_survival", "cox_median")])
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "survival_model_reference.json")
