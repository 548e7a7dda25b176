defmodule Keyring.CRDT do
  @moduledoc """
  A replicated map (delta-state CRDT) for shared cluster state: add-wins keys,
  last-writer-wins values ordered by a hybrid logical clock. Keyring's own
  presence runs on it; use it for anything else the cluster shares (a task
  board, feature flags, ...). It replaces `delta_crdt`.

      {Keyring.CRDT, name: MyApp.Board, instance: Keyring, on_change: &MyApp.board_changed/1}

      iex> {:ok, _} = Keyring.CRDT.start_link(name: DocBoard, scope: DocScope)
      iex> :ok = Keyring.CRDT.put(DocBoard, "task-1", %{state: :open})
      iex> Keyring.CRDT.get(DocBoard, "task-1")
      %{state: :open}
      iex> :ok = Keyring.CRDT.delete(DocBoard, "task-1")
      iex> Keyring.CRDT.to_map(DocBoard)
      %{}

  Replicas with the same `:name` on connected nodes find each other through
  `:pg` (group `{Keyring.CRDT, name}` in the instance's scope): membership is
  symmetric and follows the distribution connections, so there is no
  one-way `set_neighbours` to forget.

  ## Replication

    * **Deltas on change.** Every write is sent at once to every other replica
      (writes arriving in a burst are batched into one message per flush, and
      split so that no message exceeds `:max_message_bytes`).
    * **Anti-entropy.** When a replica appears, and every `:sync_interval`
      with one random replica, the two compare a 64-bit root digest (one small
      message when equal). If they differ, 1024 bucket digests are compared
      and only the keys of differing buckets travel, in chunks of at most
      `:max_message_bytes`. Keys carry their own causal context (see
      `Keyring.CRDT.AWLWWMap`), so a partial transfer never loses data and a
      replica far behind catches up completely.

  Reads (`get/2`, `to_map/1`) come from an ETS table and never wait for the
  replica process. Replication uses Erlang distribution: values are plain
  terms, trusted like everything else inside one cluster.

  ## Limits

    * A removed key keeps a tombstone (its per-key causal context, a few
      words per writer) so that late deliveries of older writes stay removed;
      tombstones are not collected yet.
    * Replicas push to every other replica (full mesh): fine for tens of
      nodes, not for thousands.
    * Hybrid clocks follow the fastest wall clock they have seen; a node whose
      clock runs far ahead wins concurrent writes until the others catch up.
    * Deltas carry whole values: keep values small (put blobs in
      `Keyring.Store` and share their cids).

  ## Options

    * `:name` (required) — registered name, ETS table name and replication group.
    * `:instance` — instance whose `:pg` scope to use (default `Keyring`), or
    * `:scope` — an explicit `:pg` scope (started if not running).
    * `:on_change` — `fun/1` or `{m, f, a}` called in the replica process with
      `[{:put, key, value} | {:delete, key}]` for every visible change, local
      or remote. Keep it cheap; hand heavy work to another process.
    * `:group` — replication group (default: `:name`); replicas with the
      same group replicate with each other.
    * `:replica` — this replica's id (default: `{node(), start time}`); must be
      unique per start, since write counters restart.
    * `:sync_interval` — ms between anti-entropy rounds (default 10_000).
    * `:max_message_bytes` — largest message to send (default 256 KiB).
  """
  use GenServer

  alias Keyring.CRDT.{AWLWWMap, HLC}

  @type crdt :: GenServer.server()

  @doc false
  def child_spec(opts) do
    %{id: {__MODULE__, Keyword.get(opts, :name)}, start: {__MODULE__, :start_link, [opts]}}
  end

  @doc "Starts a replica. See the module docs for options."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts) do
    opts =
      Keyword.validate!(opts, [
        :name,
        :scope,
        :on_change,
        :replica,
        :group,
        instance: Keyring,
        sync_interval: 10_000,
        max_message_bytes: 256 * 1024
      ])

    name = opts[:name] || raise ArgumentError, "Keyring.CRDT needs a :name"
    unless is_atom(name), do: raise(ArgumentError, ":name must be an atom")

    unless opts[:on_change] == nil or is_function(opts[:on_change], 1) or
             match?({m, f, a} when is_atom(m) and is_atom(f) and is_list(a), opts[:on_change]),
           do: raise(ArgumentError, ":on_change must be a fun/1 or {m, f, a}")

    for key <- [:sync_interval, :max_message_bytes],
        not (is_integer(opts[key]) and opts[key] > 0),
        do: raise(ArgumentError, "#{inspect(key)} must be a positive integer")

    GenServer.start_link(__MODULE__, opts, name: name)
  end

  @doc "Writes `value` at `key`."
  @spec put(crdt(), term(), term()) :: :ok
  def put(crdt, key, value), do: GenServer.call(crdt, {:put_all, [{key, value}]})

  @doc "Writes many `{key, value}` pairs in one call (one delta per flush)."
  @spec put_all(crdt(), Enumerable.t()) :: :ok
  def put_all(crdt, pairs), do: GenServer.call(crdt, {:put_all, Enum.to_list(pairs)}, :infinity)

  @doc "Removes `key`."
  @spec delete(crdt(), term()) :: :ok
  def delete(crdt, key), do: GenServer.call(crdt, {:delete, key})

  @doc "The value at `key`, or `default`. Reads ETS; no message to the replica."
  @spec get(atom(), term(), term()) :: term()
  def get(name, key, default \\ nil) when is_atom(name) do
    case :ets.lookup(name, key) do
      [{^key, value}] -> value
      [] -> default
    end
  end

  @doc "Every key and value. Reads ETS; no message to the replica."
  @spec to_map(atom()) :: map()
  def to_map(name) when is_atom(name), do: name |> :ets.tab2list() |> Map.new()

  @doc "The number of visible keys."
  @spec size(atom()) :: non_neg_integer()
  def size(name) when is_atom(name), do: :ets.info(name, :size)

  @doc "The other replicas this one replicates with."
  @spec neighbours(crdt()) :: [pid()]
  def neighbours(crdt), do: GenServer.call(crdt, :neighbours)

  @doc "Starts an anti-entropy round with every neighbour now (e.g. after a heal)."
  @spec sync(crdt()) :: :ok
  def sync(crdt), do: GenServer.cast(crdt, :sync_all)

  @doc false
  # The root digest (used by presence heartbeats and tests).
  def root(crdt), do: GenServer.call(crdt, :root)

  ## Server

  @impl GenServer
  def init(opts) do
    Process.flag(:message_queue_data, :off_heap)
    Process.flag(:trap_exit, true)
    name = opts[:name]
    scope = opts[:scope] || Keyring.PubSub.scope(opts[:instance])
    ensure_scope(scope)
    group = {__MODULE__, opts[:group] || name}
    :ets.new(name, [:named_table, :protected, :set, read_concurrency: true])
    :ok = :pg.join(scope, group, self())
    {ref, members} = :pg.monitor(scope, group)

    state = %{
      name: name,
      scope: scope,
      group: group,
      pg_ref: ref,
      replica: opts[:replica] || {node(), System.os_time(:nanosecond)},
      counter: 0,
      clock: HLC.new(),
      map: AWLWWMap.new(),
      neighbours: MapSet.new(members -- [self()]),
      pending: %{},
      flush_scheduled: false,
      on_change: opts[:on_change],
      sync_interval: opts[:sync_interval],
      max_bytes: opts[:max_message_bytes]
    }

    Enum.each(state.neighbours, &maybe_start_sync(state, &1))
    schedule_sync(state)
    {:ok, state}
  end

  defp ensure_scope(scope) do
    unless Process.whereis(scope) do
      case :pg.start(scope) do
        {:ok, _} -> :ok
        {:error, {:already_started, _}} -> :ok
      end
    end
  end

  @impl GenServer
  def handle_call({:put_all, pairs}, _from, state) do
    state =
      Enum.reduce(pairs, state, fn {key, value}, state ->
        counter = state.counter + 1
        clock = HLC.tick(state.clock)
        {map, delta, diffs} = AWLWWMap.put(state.map, state.replica, counter, clock, key, value)
        state = %{state | counter: counter, clock: clock, map: map}
        state |> apply_diffs(diffs) |> queue(delta)
      end)

    {:reply, :ok, state}
  end

  def handle_call({:delete, key}, _from, state) do
    {map, delta, diffs} = AWLWWMap.delete(state.map, key)
    state = %{state | map: map} |> apply_diffs(diffs) |> queue(delta)
    {:reply, :ok, state}
  end

  def handle_call(:neighbours, _from, state),
    do: {:reply, MapSet.to_list(state.neighbours), state}

  def handle_call(:root, _from, state), do: {:reply, AWLWWMap.root(state.map), state}

  @impl GenServer
  def handle_cast(:sync_all, state) do
    Enum.each(state.neighbours, &send_digest(state, &1))
    {:noreply, state}
  end

  @impl GenServer
  def handle_info(:flush, state) do
    send_chunked(state, state.neighbours, :crdt_delta, Map.to_list(state.pending))
    {:noreply, %{state | pending: %{}, flush_scheduled: false}}
  end

  def handle_info({:crdt_delta, _from, delta}, state), do: {:noreply, merge(state, delta)}

  def handle_info({:crdt_ae, :digest, from, root}, state) do
    if root != AWLWWMap.root(state.map),
      do: send(from, {:crdt_ae, :buckets, self(), AWLWWMap.bucket_digests(state.map)})

    {:noreply, state}
  end

  def handle_info({:crdt_ae, :buckets, from, remote}, state) do
    buckets = AWLWWMap.differing_buckets(state.map, remote)
    # Push what we hold in those buckets, then tell the peer our digests so
    # it sends back whatever it still has that we lack.
    nonempty = Enum.filter(buckets, &(AWLWWMap.bucket_digest(state.map, &1) != 0))
    send_chunked(state, [from], :crdt_delta, AWLWWMap.entries_in(state.map, nonempty))
    digests = Map.new(buckets, &{&1, AWLWWMap.bucket_digest(state.map, &1)})
    send(from, {:crdt_ae, :done, self(), digests})
    {:noreply, state}
  end

  def handle_info({:crdt_ae, :done, from, digests}, state) do
    behind = for {b, digest} <- digests, AWLWWMap.bucket_digest(state.map, b) != digest, do: b

    send_chunked(state, [from], :crdt_delta, AWLWWMap.entries_in(state.map, behind))
    {:noreply, state}
  end

  def handle_info({ref, :join, _group, pids}, %{pg_ref: ref} = state) do
    pids = pids -- [self()]
    state = %{state | neighbours: MapSet.union(state.neighbours, MapSet.new(pids))}
    Enum.each(pids, &maybe_start_sync(state, &1))
    {:noreply, state}
  end

  def handle_info({ref, :leave, _group, pids}, %{pg_ref: ref} = state) do
    {:noreply, %{state | neighbours: MapSet.difference(state.neighbours, MapSet.new(pids))}}
  end

  def handle_info(:sync_tick, state) do
    if MapSet.size(state.neighbours) > 0,
      do: send_digest(state, Enum.random(state.neighbours))

    schedule_sync(state)
    {:noreply, state}
  end

  def handle_info(_unknown, state), do: {:noreply, state}

  # Ship what is still pending (e.g. a graceful leave) before going away.
  @impl GenServer
  def terminate(_reason, state) do
    send_chunked(state, state.neighbours, :crdt_delta, Map.to_list(state.pending))
  end

  ## Internals

  defp merge(state, delta) do
    clock =
      case AWLWWMap.max_hlc(delta) do
        nil -> state.clock
        remote -> HLC.observe(state.clock, remote)
      end

    {map, diffs} = AWLWWMap.join(state.map, delta)
    apply_diffs(%{state | map: map, clock: clock}, diffs)
  end

  defp queue(state, delta) when map_size(delta) == 0, do: state

  defp queue(state, delta) do
    state = %{state | pending: Map.merge(state.pending, delta)}

    if state.flush_scheduled do
      state
    else
      send(self(), :flush)
      %{state | flush_scheduled: true}
    end
  end

  defp apply_diffs(state, []), do: state

  defp apply_diffs(state, diffs) do
    :ets.insert(state.name, for({:put, key, value} <- diffs, do: {key, value}))
    for {:delete, key} <- diffs, do: :ets.delete(state.name, key)

    case state.on_change do
      nil -> :ok
      fun when is_function(fun, 1) -> fun.(diffs)
      {m, f, a} -> apply(m, f, [diffs | a])
    end

    state
  end

  # The pid that sorts first starts the exchange, so a new pair syncs once.
  defp maybe_start_sync(state, pid) do
    if self() < pid, do: send_digest(state, pid)
  end

  defp send_digest(state, pid),
    do: send(pid, {:crdt_ae, :digest, self(), AWLWWMap.root(state.map)})

  defp schedule_sync(state) do
    jitter = :rand.uniform(max(div(state.sync_interval, 4), 1))

    Process.send_after(
      self(),
      :sync_tick,
      state.sync_interval - div(state.sync_interval, 8) + jitter
    )
  end

  # Sends entries in messages of at most max_bytes (external size).
  defp send_chunked(_state, _pids, _tag, []), do: :ok

  defp send_chunked(state, pids, tag, entries) do
    pids = Enum.to_list(pids)

    unless pids == [] do
      entries
      |> chunk(state.max_bytes - 64)
      |> Enum.each(fn chunk ->
        msg = {tag, self(), chunk}
        Enum.each(pids, &send(&1, msg))
      end)
    end

    :ok
  end

  @doc false
  # Splits entries into lists whose external size stays within max_bytes.
  def chunk(entries, max_bytes) do
    {chunks, last, _size} =
      Enum.reduce(entries, {[], [], 0}, fn entry, {chunks, current, size} ->
        entry_size = :erlang.external_size(entry)

        if size + entry_size > max_bytes and current != [] do
          {[current | chunks], [entry], entry_size}
        else
          {chunks, [entry | current], size + entry_size}
        end
      end)

    Enum.reverse(if last != [], do: [last | chunks], else: chunks)
  end
end
