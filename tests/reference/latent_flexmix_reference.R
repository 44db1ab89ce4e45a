# Reference values for tests/models/test_latent_flexmix.py: latent-class linear mixed
# models fitted by flexmix's FLXMRlmm (EM, exact marginal normal likelihood, ML),
# run offline (R is never a test dependency):
#   cd tests/reference && Rscript latent_flexmix_reference.R > latent_flexmix_reference.Rout 2>&1
# Reads latent_flexmix_data.csv (written by latent_flexmix_make_data.py: 150 subjects
# x 5 visits, continuous outcome `score`), writes latent_flexmix_reference.json.
#
# The model flexmix fits with varFix = c(Random = TRUE, Residual = TRUE) and the
# grouping `| subject_id` is alsprog's LatentClassMixedModel: every visit of a subject
# in one class, class-specific fixed effects, one random-effects covariance G and one
# residual variance s2 shared by the classes, constant class probabilities, and
# log-likelihood sum_i log sum_k pi_k N(y_i; X_i beta_k, Z_i G Z_i' + s2 I)
# (FLXMRlmm's logLik is mvtnorm::dmvnorm of each subject's vector under the marginal
# covariance, spread evenly over the subject's rows and summed back by group).
#
# Fits (each from the true partition and from random subject-level partitions,
# EM to a relative log-likelihood change of 1e-13, the best start kept):
#   k2_slope      score ~ months, random ~ months, K = 2
#   k1_slope      the same with K = 1 (the linear mixed model by ML)
#   k2_intercept  score ~ months, random ~ 1, K = 2
#   k2_slope_unbalanced  k2_slope on the first 3 visits of each true class 2 (fast)
#                 subject and the first 3 + subject_id %% 3 of each class 1 subject
#                 (fast progressors leave early).  Here flexmix's M-step is not the
#                 EM step of this likelihood (it pools the class covariances with
#                 weights proportional to sum_i n_i w_ik instead of sum_i w_ik and
#                 the residual variances with sum_i w_ik instead of sum_i n_i w_ik),
#                 so its fixed point is not the ML estimate; the test shows that.
suppressMessages({library(flexmix); library(jsonlite); library(mvtnorm)})
options(digits = 12)
cat("R", R.version$major, R.version$minor, " flexmix", as.character(packageVersion("flexmix")),
    " mvtnorm", as.character(packageVersion("mvtnorm")), "\n")

d0 <- read.csv("latent_flexmix_data.csv")
d0 <- d0[order(d0$subject_id, d0$months), ]
d0$visit <- ave(d0$months, d0$subject_id, FUN = seq_along)

ctrl <- list(tolerance = 1e-13, iter.max = 10000, minprior = 0)

# Exact marginal log-likelihood at the returned parameters, recomputed densely here.
loglik_dense <- function(fit, data, random) {
  K <- fit@k
  ll <- 0
  for (s in unique(data$subject_id)) {
    di <- data[data$subject_id == s, ]
    X <- cbind(1, di$months)
    Z <- model.matrix(random, di)
    dens <- sapply(seq_len(K), function(k) {
      p <- fit@components[[k]][[1]]@parameters
      V <- Z %*% p$sigma2$Random %*% t(Z) + diag(nrow(Z)) * p$sigma2$Residual
      log(fit@prior[k]) + dmvnorm(di$score, drop(X %*% p$coef), V, log = TRUE)
    })
    m <- max(dens)
    ll <- ll + m + log(sum(exp(dens - m)))
  }
  ll
}

one <- function(name, data, K, random, n_random_starts, seed) {
  data$subject_id <- factor(data$subject_id)
  first <- !duplicated(data$subject_id)
  nsub <- sum(first)
  starts <- list(true_partition = data$true_class)
  if (K == 1) starts <- list(one_class = rep(1L, nrow(data)))
  set.seed(seed)
  for (r in seq_len(n_random_starts)) {
    lab <- sample.int(K, nsub, replace = TRUE)
    starts[[paste0("random_", r)]] <- lab[as.integer(data$subject_id)]
  }
  fits <- list()
  info <- list()
  for (s in names(starts)) {
    t0 <- proc.time()[["elapsed"]]
    f <- flexmix(score ~ months | subject_id, data = data, k = K,
                 cluster = starts[[s]],
                 model = FLXMRlmm(random = random,
                                  varFix = c(Random = TRUE, Residual = TRUE)),
                 control = ctrl)
    el <- proc.time()[["elapsed"]] - t0
    cat(sprintf("%-22s start %-15s logLik %.8f  iter %5d  converged %s  k %d  %.1f s\n",
                name, s, as.numeric(logLik(f)), f@iter, f@converged, f@k, el))
    fits[[s]] <- f
    info[[length(info) + 1]] <- list(start = s, logLik = as.numeric(logLik(f)),
                                     iter = f@iter, converged = f@converged,
                                     k = f@k)
  }
  lls <- sapply(fits, function(f) if (f@k == K) as.numeric(logLik(f)) else -Inf)
  fit <- fits[[which.max(lls)]]
  cat("\n==", name, " best start:", names(fits)[which.max(lls)], "\n")
  print(summary(fit))
  comps <- lapply(seq_len(K), function(k) {
    p <- fit@components[[k]][[1]]@parameters
    list(coef = as.list(p$coef), random_cov = unname(p$sigma2$Random),
         residual = p$sigma2$Residual)
  })
  print(comps)
  post <- fit@posterior$scaled[first, , drop = FALSE]
  ll_dense <- loglik_dense(fit, data, random)
  cat("logLik", format(as.numeric(logLik(fit)), digits = 15),
      " recomputed densely", format(ll_dense, digits = 15), "\n")
  list(
    name = name,
    call = sprintf(paste0("flexmix(score ~ months | subject_id, data, k = %d, cluster = <start>, ",
                          "model = FLXMRlmm(random = %s, varFix = c(Random = TRUE, ",
                          "Residual = TRUE)), control = list(tolerance = 1e-13, ",
                          "iter.max = 10000, minprior = 0))"),
                   K, paste(deparse(random), collapse = "")),
    random = paste(deparse(random), collapse = ""),
    k = K,
    n_subjects = nsub, n_obs = nrow(data),
    starts = info,
    logLik = as.numeric(logLik(fit)),
    loglik_dense = ll_dense,
    df = attr(logLik(fit), "df"),
    AIC = AIC(fit), BIC = BIC(fit), nobs = attr(logLik(fit), "nobs"),
    iter = fit@iter, converged = fit@converged,
    components = comps,
    prior = as.numeric(fit@prior),
    subject_ids = as.integer(as.character(data$subject_id[first])),
    posterior = unname(post)
  )
}

unbalanced <- d0[d0$visit <= ifelse(d0$true_class == 1, 3 + d0$subject_id %% 3, 3), ]
ref <- list(
  k2_slope = one("k2_slope", d0, 2, ~ months, 1, 11),
  k1_slope = one("k1_slope", d0, 1, ~ months, 0, 12),
  k2_intercept = one("k2_intercept", d0, 2, ~ 1, 1, 13),
  k2_slope_unbalanced = one("k2_slope_unbalanced", unbalanced, 2, ~ months, 1, 14)
)
writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "latent_flexmix_reference.json")
