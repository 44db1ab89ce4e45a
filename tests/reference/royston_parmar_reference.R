# Royston-Parmar flexible parametric survival: a hand-coded likelihood in R, the
# reference of alsprog's SurvivalModel numerics (issue 25).
# Run from tests/reference:  Rscript royston_parmar_reference.R > royston_parmar_reference.Rout 2>&1
# Model: g(S(t | x)) = s(log t; gamma) + x'beta with s a restricted cubic spline in
# log t (Royston & Parmar 2002, Stat Med 21:2175; Stata's stpm2 / R's rstpm2 without
# orthogonalisation), knots: the extremes of the log event times and, inside, their
# centiles at equal steps (df = 3: the 33.3rd and 66.7th, R's quantile type 7).
# Scales: hazard (log cumulative hazard), odds (log odds of failure), normal (probit).
# Log-likelihood with delayed entry: sum d log h(t) + log S(t) - log S(entry).
suppressPackageStartupMessages(library(jsonlite))
lung <- read.csv("lung.csv")
rcs <- function(z, knots) {
  kmin <- knots[1]; kmax <- knots[length(knots)]; inner <- knots[-c(1, length(knots))]
  pos <- function(u) pmax(u, 0)^3
  if (length(inner) == 0) return(cbind(1, z))
  cbind(1, z, sapply(inner, function(k) {
    lam <- (kmax - k) / (kmax - kmin)
    pos(z - k) - lam * pos(z - kmin) - (1 - lam) * pos(z - kmax)
  }))
}
drcs <- function(z, knots) {
  kmin <- knots[1]; kmax <- knots[length(knots)]; inner <- knots[-c(1, length(knots))]
  dpos <- function(u) 3 * pmax(u, 0)^2
  if (length(inner) == 0) return(cbind(0, rep(1, length(z))))
  cbind(0, 1, sapply(inner, function(k) {
    lam <- (kmax - k) / (kmax - kmin)
    dpos(z - k) - lam * dpos(z - kmin) - (1 - lam) * dpos(z - kmax)
  }))
}
loglik <- function(theta, t, d, X, knots, scale, entry = NULL) {
  ng <- length(knots)  # intercept, log t and one term per inner knot
  g <- theta[1:ng]; b <- theta[-(1:ng)]
  xb <- as.vector(X %*% b)
  z <- log(t)
  eta <- as.vector(rcs(z, knots) %*% g) + xb
  ds <- as.vector(drcs(z, knots) %*% g)
  if (any(ds <= 0)) return(-1e10)
  logS <- function(e) switch(scale, hazard = -exp(e), odds = -log1p(exp(e)),
                             normal = pnorm(-e, log.p = TRUE))
  logdH <- function(e) switch(scale, hazard = e, odds = plogis(e, log.p = TRUE),
                              normal = dnorm(e, log = TRUE) - pnorm(-e, log.p = TRUE))
  ll <- sum(d * (logdH(eta) + log(ds) - log(t)) + logS(eta))
  if (!is.null(entry)) {
    inn <- entry > 0
    eta0 <- as.vector(rcs(log(entry[inn]), knots) %*% g) + xb[inn]
    ll <- ll - sum(logS(eta0))
  }
  ll
}
fit <- function(t, d, X, scale, df = 3, entry = NULL) {
  z <- log(t[d == 1])
  knots <- unname(quantile(z, probs = seq(0, 1, length.out = df + 1), type = 7))
  start <- c(-8, 1, rep(0, df - 1), rep(0, ncol(X)))
  obj <- function(th) -loglik(th, t, d, X, knots, scale, entry)
  o <- optim(start, obj, method = "BFGS", control = list(maxit = 10000, reltol = 1e-16))
  o <- optim(o$par, obj, method = "Nelder-Mead", control = list(maxit = 20000, reltol = 1e-16))
  o <- optim(o$par, obj, method = "BFGS", control = list(maxit = 10000, reltol = 1e-16))
  # Newton steps with central-difference derivatives finish what optim leaves in the
  # flat directions of the spline coefficients
  th <- o$par
  grad <- function(th) sapply(seq_along(th), function(j) {
    h <- 1e-5 * max(1, abs(th[j])); e <- replace(numeric(length(th)), j, h)
    (obj(th + e) - obj(th - e)) / (2 * h)
  })
  for (i in 1:20) {
    H <- optimHess(th, obj, gr = grad)
    step <- solve(H, grad(th))
    if (obj(th - step) > obj(th)) break
    th <- th - step
    if (max(abs(step)) < 1e-10) break
  }
  H <- optimHess(th, obj, gr = grad)
  list(knots = knots, theta = th, loglik = -obj(th), max_grad = max(abs(grad(th))),
       se = sqrt(diag(solve(H))), convergence = o$convergence)
}
X <- as.matrix(lung[, c("age", "sex", "ph.ecog")])
out <- list(
  lung_hazard_df3 = fit(lung$time, lung$event, X, "hazard"),
  lung_odds_df3 = fit(lung$time, lung$event, X, "odds"),
  lung_normal_df3 = fit(lung$time, lung$event, X, "normal"),
  lung_hazard_df1 = fit(lung$time, lung$event, X, "hazard", df = 1),
  lung_hazard_df3_entry = fit(lung$time, lung$event, X, "hazard", entry = lung$entry)
)
for (nm in names(out)) cat(nm, "loglik", format(out[[nm]]$loglik, digits = 15),
                           "max |gradient|", format(out[[nm]]$max_grad, digits = 3),
                           "beta", format(tail(out[[nm]]$theta, 3), digits = 8), "\n")
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "royston_parmar_reference.json")
