using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>
/// Ray Serve's router for multiplexed models, as its source behaves: requests wait in the router's FIFO of pending
/// requests; up to min(50, 2 x replicas) routing tasks each take the next pending request's model id, pick candidate
/// replicas by model, sample two of them at random and send to the one with the shorter queue among those below
/// <see cref="MaxOngoingRequests"/> (so a busy replica still accepts, and requests queue there); a task that finds
/// none backs off and tries again. A replica that is found goes to the oldest pending request for the task's model,
/// else to the oldest pending request (<c>FIFOMixin._fulfill_next_pending_request</c>,
/// <c>_get_pending_request_matching_metadata</c>). Replicas are known by the model ids they report (loaded and
/// loading), not by what the router sent them. The two generations differ in how candidates are chosen and in the
/// backoff (see <see cref="RayServe243Policy"/> and <see cref="RayServePolicy"/>).
/// </summary>
public abstract class RayServeRouter(IRandomSource random) : IPlacementPolicy
{
    /// <summary><c>max_ongoing_requests</c>' default: requests a replica accepts, running or waiting there.</summary>
    public const int MaxOngoingRequests = 5;

    /// <summary><c>RAY_SERVE_MULTIPLEXED_MODEL_ID_MATCHING_TIMEOUT_S</c>' default (constants.py); the window is drawn from U(1, 2) of it.</summary>
    public static readonly TimeSpan MatchingTimeout = TimeSpan.FromSeconds(1);

    private const int MaxRoutingTasksCap = 50;
    private readonly List<RoutingTask> _tasks = [];
    private readonly HashSet<string> _taken = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public abstract string Name { get; }

    /// <summary>Model ids with no replica that were already sent to the fewest-models replicas once (<c>_multiplexed_model_id_fallback_match</c>).</summary>
    protected HashSet<string> FallbackMatch { get; } = new(StringComparer.Ordinal);

    /// <summary>The randomness of the window and of the two choices.</summary>
    protected IRandomSource Random => random;

    /// <inheritdoc />
    public int Admits(RunnerState runner) => MaxOngoingRequests;

    /// <inheritdoc />
    public PlacementChoice? Next(PlacementContext context)
    {
        var queue = context.Queue;
        _taken.RemoveWhere(id => !queue.Contains(id));
        var replicas = context.Runners.All.Where(r => r.Confirmed && !r.Draining).OrderBy(r => r.RunnerId, StringComparer.Ordinal).ToList();
        var target = Math.Min(queue.Count, Math.Min(MaxRoutingTasksCap, 2 * replicas.Count));
        if (_tasks.Count > target)
        {
            _tasks.RemoveRange(target, _tasks.Count - target);
        }

        foreach (var pending in queue.HeadClass)
        {
            if (_tasks.Count >= target)
            {
                break;
            }

            if (_taken.Add(pending.RequestId))
            {
                _tasks.Add(new RoutingTask(pending.Request.Hint, context.Now));
            }
        }

        // Every pending request's model id was taken already: the remaining tasks route without one, to all replicas.
        while (_tasks.Count < target)
        {
            _tasks.Add(new RoutingTask(null, context.Now));
        }

        foreach (var task in _tasks)
        {
            while (task.NextTry <= context.Now)
            {
                var candidates = Candidates(task, replicas, context.Now);
                if (candidates.Count > 0 && ChooseFromTwo(candidates) is { } replica)
                {
                    _tasks.Remove(task);
                    var fulfilled = (task.Model is { } model ? queue.OldestInHeadClassWith(model) : null) ?? queue.Head!;
                    return PlacementChoice.Of(fulfilled, replica);
                }

                task.NextTry = context.Now + Backoff(task.Attempts++);
            }

            context.WakeAt(task.NextTry);
        }

        return null;
    }

    /// <summary>The candidate replicas of one try of <paramref name="task"/> (updating its routing context).</summary>
    protected abstract IReadOnlyList<RunnerState> Candidates(RoutingTask task, List<RunnerState> replicas, DateTimeOffset now);

    /// <summary>How long a task sleeps after its <paramref name="attempt"/>-th failed try (0-based).</summary>
    protected abstract TimeSpan Backoff(int attempt);

    /// <summary>The window of one task, drawn from U(1, 2) x <see cref="MatchingTimeout"/>.</summary>
    protected TimeSpan DrawMatchingTimeout() => MatchingTimeout * (1 + random.NextDouble());

    /// <summary>Replicas holding <paramref name="model"/>, as they report it (loaded or loading).</summary>
    protected static List<RunnerState> Holding(string model, List<RunnerState> replicas) => [.. replicas.Where(r => r.Reports(model))];

    /// <summary>The replicas with the fewest model ids (<c>_get_replica_ids_with_fewest_multiplexed_models</c>).</summary>
    protected static List<RunnerState> FewestModels(List<RunnerState> replicas)
    {
        var fewest = replicas.Count == 0 ? 0 : replicas.Min(ModelCount);
        return [.. replicas.Where(r => ModelCount(r) == fewest)];
    }

    private static int ModelCount(RunnerState replica) => replica.Hints.Length + replica.Loading.Length;

    /// <summary>Two distinct random candidates; the one with the shorter queue among those that accept (<c>select_from_candidate_replicas</c>).</summary>
    private RunnerState? ChooseFromTwo(IReadOnlyList<RunnerState> candidates)
    {
        IEnumerable<RunnerState> chosen;
        if (candidates.Count == 1)
        {
            chosen = [candidates[0]];
        }
        else
        {
            var i = random.Next(candidates.Count);
            var j = random.Next(candidates.Count - 1);
            j += j >= i ? 1 : 0;
            chosen = [candidates[i], candidates[j]];
        }

        RunnerState? best = null;
        foreach (var replica in chosen)
        {
            if (replica.InFlight < MaxOngoingRequests && (best is null || replica.InFlight < best.InFlight))
            {
                best = replica;
            }
        }

        return best;
    }

    /// <summary>One routing task: the model id it routes for and its routing context.</summary>
    protected sealed class RoutingTask(string? model, DateTimeOffset started)
    {
        /// <summary>The model id of the pending request whose metadata the task took.</summary>
        public string? Model { get; } = model;

        /// <summary>When the task may try next.</summary>
        public DateTimeOffset NextTry { get; set; } = started;

        /// <summary>Failed tries so far.</summary>
        public int Attempts { get; set; }

        /// <summary>When matching by model began (<c>multiplexed_start_matching_time</c>).</summary>
        public DateTimeOffset? MatchingSince { get; set; }

        /// <summary>The window drawn once per task (Ray up to 2.43).</summary>
        public TimeSpan? Window { get; set; }

        /// <summary><c>tried_first_multiplexed_models</c> (Ray from 2.44).</summary>
        public bool TriedFirst { get; set; }

        /// <summary><c>tried_fewest_multiplexed_models</c> (Ray from 2.44).</summary>
        public bool TriedFewest { get; set; }
    }
}

/// <summary>
/// Ray Serve up to 2.43 (python/ray/serve/_private/replica_scheduler/pow_2_scheduler.py,
/// <c>choose_two_replicas_with_backoff</c>): for a window drawn once per task from U(1, 2) s, only replicas holding the
/// model are tried (or, for a model no replica holds, the fewest-models replicas, once per model); after the window, the
/// replicas with the fewest models. Backoff between tries: 0, 0.05, 0.1, 0.15, 0.2, 0.5, then 1 s.
/// </summary>
public sealed class RayServe243Policy(IRandomSource random) : RayServeRouter(random)
{
    private static readonly double[] BackoffSequence = [0, 0.05, 0.1, 0.15, 0.2, 0.5, 1.0];

    /// <inheritdoc />
    public override string Name => PlacementPolicies.RayServe243;

    /// <inheritdoc />
    protected override IReadOnlyList<RunnerState> Candidates(RoutingTask task, List<RunnerState> replicas, DateTimeOffset now)
    {
        if (task.Model is not { } model)
        {
            return replicas;
        }

        task.MatchingSince ??= now;
        task.Window ??= DrawMatchingTimeout();
        if (now - task.MatchingSince < task.Window)
        {
            var holders = Holding(model, replicas);
            if (holders.Count == 0 && FallbackMatch.Add(model))
            {
                return FewestModels(replicas);
            }

            if (holders.Count > 0)
            {
                FallbackMatch.Remove(model);
            }

            return holders;
        }

        return FewestModels(replicas);
    }

    /// <inheritdoc />
    protected override TimeSpan Backoff(int attempt) => TimeSpan.FromSeconds(BackoffSequence[Math.Min(attempt, BackoffSequence.Length - 1)]);
}

/// <summary>
/// Ray Serve from 2.44 (PR #51389; python/ray/serve/_private/request_router/request_router.py,
/// <c>MultiplexMixin.apply_multiplex_routing</c>): within the window (drawn anew at every check from U(1, 2) s) the
/// replicas holding the model are tried once; later tries in the window, and a model no replica holds, go to the
/// replicas with the fewest models; after the window, those once more, then every replica. Backoff
/// (<c>_choose_replicas_with_backoff</c>): none after the first failed try, then 0.025 s doubling up to 0.5 s.
/// </summary>
public sealed class RayServePolicy(IRandomSource random) : RayServeRouter(random)
{
    /// <inheritdoc />
    public override string Name => PlacementPolicies.RayServe;

    /// <inheritdoc />
    protected override IReadOnlyList<RunnerState> Candidates(RoutingTask task, List<RunnerState> replicas, DateTimeOffset now)
    {
        if (task.Model is not { } model)
        {
            return replicas;
        }

        task.MatchingSince ??= now;
        if (now - task.MatchingSince < DrawMatchingTimeout())
        {
            var candidates = Holding(model, replicas);
            if ((candidates.Count == 0 && !FallbackMatch.Contains(model)) || task.TriedFirst)
            {
                candidates = FewestModels(replicas);
                FallbackMatch.Add(model);
            }
            else if (candidates.Count > 0)
            {
                FallbackMatch.Remove(model);
            }

            task.TriedFirst = true;
            return candidates;
        }

        if (!task.TriedFewest)
        {
            task.TriedFewest = true;
            return FewestModels(replicas);
        }

        return replicas;
    }

    /// <inheritdoc />
    protected override TimeSpan Backoff(int attempt) => attempt == 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(Math.Min(0.025 * Math.Pow(2, attempt - 1), 0.5));
}
