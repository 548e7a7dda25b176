defmodule Keyring.Coordinator do
  @moduledoc """
  Cluster presence, health and task routing.

  Every node publishes one `Keyring.Coordinator.Presence` entry (node id,
  node name, incarnation, mesh address and keyrings, capabilities, health) into a
  replicated map (`Keyring.CRDT`, group `:keyring_presence`). Each node is the
  only writer of its own entry, Phoenix.Tracker-style, so there are no
  conflicting writes.

      iex> Node.list()
      [:"keyring2@127.0.0.1"]
      iex> Keyring.Coordinator.active_nodes()
      [#Keyring.Coordinator.Presence<:"keyring1@127.0.0.1" up id=5gzq3tuv… inc=3 caps=[] rq=0 mem=61MB up=42s>,
       #Keyring.Coordinator.Presence<:"keyring2@127.0.0.1" up id=jx2ma7qk… inc=1 caps=[] rq=0 mem=60MB up=17s>]

  ## Liveness

    * Every `:heartbeat` ms (default 5_000) a node samples its health and
      republishes its entry only when health changed materially (load level,
      ±10 % memory) or its entry went missing. Uptime is derived from
      `started_at`, so an idle node sends nothing.
    * Every `:beat_every` heartbeats (default 3, i.e. 15 s) it sends a
      ~50-byte liveness beat to each other coordinator (Phoenix.Tracker's
      idle heartbeat, at the same period).
    * A node is marked **down** at once on `nodedown` or when its coordinator
      exits (both free: Erlang distribution detects them), and after
      `:down_after` ms without a beat (default 2 beat periods, 30 s: a hung
      coordinator, or a partition before `net_ticktime` notices).
      Reads skip down nodes; a `{:keyring_presence, :down, entry}` event goes out.
    * A node down for `:permdown_after` ms (default 5 minutes) is removed from
      the map (`:leave`). If it comes back, its entry is published again.
    * A restart is recognised by a higher incarnation: `:leave` for the old
      entry, then `:join` for the new one.

  Events are broadcast on this node to `Keyring.PubSub` topic
  `"keyring:presence"` (see `subscribe/1`).

  ## Task routing

  A node registers a handler per capability; `route/3` runs a task on a healthy
  node that has it. Only registered handlers are reachable by other nodes,
  never an arbitrary function:

      Keyring.Coordinator.register(:transcode, fn %{file: f} -> MyApp.transcode(f) end)
      Keyring.Coordinator.route(:transcode, %{file: "a.mp4"}, timeout: 30_000)
      #=> {:ok, result} | {:error, :no_capability | :nodedown | :timeout | {:handler_crashed, msg}}
  """
  use GenServer
  require Logger

  alias Keyring.{CRDT, Instance, PubSub}
  alias Keyring.Coordinator.{Incarnation, Presence, Router, View}

  @coordinators :keyring_coordinators

  ## Public API

  @doc "Healthy (`:up`) nodes, sorted by node name."
  @spec active_nodes(keyword()) :: [Presence.t()]
  def active_nodes(opts \\ []) do
    opts |> instance!() |> all() |> Enum.filter(&(&1.status == :up))
  end

  @doc """
  The presence map, `%{node_id => %Presence{}}`, of healthy nodes
  (`include_down: true` to see down ones too).
  """
  @spec presence(keyword()) :: %{String.t() => Presence.t()}
  def presence(opts \\ []) when is_list(opts) do
    opts = Keyword.validate!(opts, instance: Keyring, include_down: false)

    for p <- all(opts[:instance]), opts[:include_down] or p.status == :up, into: %{} do
      {p.node_id, p}
    end
  end

  @doc "Subscribes the caller to presence events (see `Keyring.PubSub`)."
  @spec subscribe(keyword()) :: :ok
  def subscribe(opts \\ []),
    do: PubSub.subscribe(PubSub.presence_topic(), instance: instance!(opts))

  @doc """
  Registers `handler` (`fun/1` or `{m, f, extra_args}`, called as
  `apply(m, f, [task | extra_args])`) for `capability` on this node and
  publishes the capability.
  """
  @spec register(term(), (term() -> term()) | {module(), atom(), list()}, keyword()) :: :ok
  def register(capability, handler, opts \\ []) do
    instance = instance!(opts)

    unless is_function(handler, 1) or
             match?({m, f, a} when is_atom(m) and is_atom(f) and is_list(a), handler),
           do: raise(ArgumentError, "handler must be a fun/1 or {m, f, args}")

    GenServer.call(server(instance), {:register, capability, handler})
  end

  @doc "Removes this node's handler for `capability`."
  @spec unregister(term(), keyword()) :: :ok
  def unregister(capability, opts \\ []),
    do: GenServer.call(server(instance!(opts)), {:unregister, capability})

  @doc false
  # Called by the mesh plane when its address or keyrings change.
  @spec set_mesh(String.t() | nil, [<<_::256>>], Keyring.instance()) :: :ok
  def set_mesh(addr, keyrings, instance),
    do: GenServer.cast(server(instance), {:set_mesh, addr, Enum.sort(keyrings)})

  @doc """
  Runs `task` on a healthy node that registered `capability`.

  Options: `:instance` (default `Keyring`), `:timeout` (ms, default 5_000),
  `:strategy` (a `Keyring.Coordinator.RoutingStrategy`, default least loaded).
  """
  @spec route(term(), term(), keyword()) ::
          {:ok, term()} | {:error, :no_capability | :nodedown | :timeout | term()}
  def route(capability, task, opts \\ []) do
    opts =
      Keyword.validate!(opts,
        instance: Keyring,
        timeout: 5_000,
        strategy: Keyring.Coordinator.RoutingStrategy.LeastLoaded
      )

    candidates =
      active_nodes(instance: opts[:instance]) |> Enum.filter(&(capability in &1.capabilities))

    case candidates do
      [] ->
        {:error, :no_capability}

      _ ->
        target = opts[:strategy].pick(candidates, capability, task)
        Router.call(target, capability, task, opts[:timeout])
    end
  end

  defp all(instance) do
    table = Instance.child_name(instance, __MODULE__)

    try do
      table |> :ets.tab2list() |> Enum.map(&elem(&1, 1)) |> Enum.sort_by(& &1.node)
    rescue
      ArgumentError ->
        raise ArgumentError, "no Keyring instance #{inspect(instance)} is running"
    end
  end

  defp server(instance), do: Instance.child_name(instance, __MODULE__)

  ## Server

  @doc false
  def child_spec(opts), do: %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}}

  @doc false
  # The presence CRDT and the coordinator it reports changes to.
  def children(instance, data_dir, conf) do
    coordinator = server(instance)

    [
      {
        CRDT,
        # Deltas are pushed and beats show liveness: anti-entropy is a backstop.
        name: presence_crdt(instance),
        instance: instance,
        group: :keyring_presence,
        sync_interval: 30_000,
        on_change: fn diffs ->
          if pid = Process.whereis(coordinator), do: send(pid, {:presence_changed, diffs})
        end
      },
      {__MODULE__, instance: instance, data_dir: data_dir, coordinator: conf}
    ]
  end

  @doc false
  def start_link(opts) do
    instance = Keyword.fetch!(opts, :instance)
    GenServer.start_link(__MODULE__, opts, name: server(instance))
  end

  @doc false
  # Options accepted under `coordinator:` in `Keyring.start_link/1`.
  def validate!(opts) do
    opts =
      Keyword.validate!(opts,
        heartbeat: 5_000,
        beat_every: 3,
        down_after: nil,
        permdown_after: 300_000
      )

    for key <- [:heartbeat, :permdown_after, :beat_every],
        not (is_integer(opts[key]) and opts[key] > 0),
        do: raise(ArgumentError, "coordinator #{inspect(key)} must be a positive integer")

    Keyword.update!(opts, :down_after, &(&1 || 2 * opts[:beat_every] * opts[:heartbeat]))
  end

  @doc false
  def presence_crdt(instance), do: Instance.child_name(instance, Keyring.PresenceMap)

  @impl GenServer
  def init(opts) do
    instance = opts[:instance]
    conf = validate!(Keyword.get(opts, :coordinator, []))
    table = server(instance)
    :ets.new(table, [:named_table, :protected, :set, read_concurrency: true])
    scope = PubSub.scope(instance)
    :ok = :pg.join(scope, @coordinators, self())
    {ref, members} = :pg.monitor(scope, @coordinators)
    :ok = PubSub.subscribe(PubSub.topology_topic(), instance: instance)

    Process.flag(:trap_exit, true)
    incarnation = Incarnation.bump(opts[:data_dir])
    Instance.put(instance, :incarnation, incarnation)

    me = %Presence{
      node_id: Keyring.Identity.node_id(instance: instance),
      node: node(),
      incarnation: incarnation,
      pid: self(),
      mesh_addr: mesh_addr(instance),
      keyrings: instance |> Instance.get(:rings, %{}) |> Map.keys() |> Enum.sort(),
      version: to_string(Application.spec(:keyring, :vsn) || "dev"),
      health: Presence.sample_health(%{})
    }

    state = %{
      instance: instance,
      table: table,
      crdt: presence_crdt(instance),
      conf: conf,
      pg_ref: ref,
      peers: MapSet.new(members -- [self()]),
      me: me,
      handlers: %{},
      last_seen: %{},
      down_since: %{},
      beats: 0
    }

    state = publish(state)
    schedule_beat(state)
    {:ok, state}
  end

  @impl GenServer
  def handle_call({:register, cap, handler}, _from, state) do
    state = %{state | handlers: Map.put(state.handlers, cap, handler)}
    {:reply, :ok, state |> update_me(&%{&1 | capabilities: caps(state)}) |> publish()}
  end

  def handle_call({:unregister, cap}, _from, state) do
    state = %{state | handlers: Map.delete(state.handlers, cap)}
    {:reply, :ok, state |> update_me(&%{&1 | capabilities: caps(state)}) |> publish()}
  end

  def handle_call({:run, cap, task}, from, state) do
    case Map.fetch(state.handlers, cap) do
      {:ok, handler} ->
        spawn(fn -> GenServer.reply(from, Router.run(handler, task)) end)
        {:noreply, state}

      :error ->
        {:reply, {:error, :no_capability}, state}
    end
  end

  @impl GenServer
  def handle_cast({:set_mesh, addr, keyrings}, state) do
    if {addr, keyrings} == {state.me.mesh_addr, state.me.keyrings},
      do: {:noreply, state},
      else:
        {:noreply, state |> update_me(&%{&1 | mesh_addr: addr, keyrings: keyrings}) |> publish()}
  end

  @impl GenServer
  def handle_info(:beat, state) do
    state = %{state | beats: state.beats + 1}
    health = Presence.sample_health(state.me.health)

    state =
      if Presence.material_change?(state.me.health, health) or
           CRDT.get(state.crdt, key(state.me)) == nil do
        state |> update_me(&%{&1 | health: health}) |> publish()
      else
        state
      end

    if rem(state.beats, state.conf[:beat_every]) == 0,
      do: Enum.each(state.peers, &send(&1, {:keyring_beat, self()}))

    schedule_beat(state)
    {:noreply, state |> expire() |> rebuild_view()}
  end

  def handle_info({:keyring_beat, pid}, state) do
    state = seen(state, pid)

    case Enum.find(state.down_since, fn {_id, {_inc, pid_down, _}} -> pid_down == pid end) do
      {id, _} ->
        {:noreply, %{state | down_since: Map.delete(state.down_since, id)} |> rebuild_view()}

      nil ->
        {:noreply, state}
    end
  end

  def handle_info({:presence_changed, _diffs}, state), do: {:noreply, rebuild_view(state)}

  def handle_info({:keyring_topology, :nodedown, node}, state) do
    {:noreply, state |> mark_down(&(&1.node == node)) |> rebuild_view()}
  end

  def handle_info({:keyring_topology, :nodeup, _node}, state), do: {:noreply, state}

  def handle_info({ref, :join, _, pids}, %{pg_ref: ref} = state) do
    pids = pids -- [self()]
    Enum.each(pids, &send(&1, {:keyring_beat, self()}))
    state = Enum.reduce(pids, state, &seen(&2, &1))
    {:noreply, %{state | peers: MapSet.union(state.peers, MapSet.new(pids))}}
  end

  def handle_info({ref, :leave, _, pids}, %{pg_ref: ref} = state) do
    state = %{state | peers: MapSet.difference(state.peers, MapSet.new(pids))}
    {:noreply, state |> mark_down(&(&1.pid in pids)) |> rebuild_view()}
  end

  def handle_info(_other, state), do: {:noreply, state}

  # Graceful leave: remove our entry so others see :leave rather than :down.
  @impl GenServer
  def terminate(_reason, state) do
    Instance.erase(state.instance, :incarnation)
    CRDT.delete(state.crdt, key(state.me))
  catch
    :exit, _ -> :ok
  end

  ## Internals

  defp instance!(opts), do: Keyword.validate!(opts, instance: Keyring)[:instance]

  # The mesh plane may be up already (this process restarted on its own).
  defp mesh_addr(instance) do
    case Instance.get(instance, :mesh_addresses, nil) do
      {mesh, _join} -> mesh
      nil -> nil
    end
  end

  defp seen(state, pid),
    do: %{state | last_seen: Map.put(state.last_seen, pid, System.monotonic_time(:millisecond))}

  defp caps(state), do: state.handlers |> Map.keys() |> Enum.sort()

  defp key(%Presence{node_id: id}), do: {:node, id}

  defp update_me(state, fun), do: %{state | me: fun.(state.me)}

  defp publish(state) do
    :ok = CRDT.put(state.crdt, key(state.me), %{state.me | status: :up})
    rebuild_view(state)
  end

  defp schedule_beat(state) do
    hb = state.conf[:heartbeat]
    Process.send_after(self(), :beat, hb - div(hb, 10) + :rand.uniform(max(div(hb, 5), 1)))
  end

  defp mark_down(state, pred) do
    now = System.monotonic_time(:millisecond)

    down =
      for {_, p} <- :ets.tab2list(state.table),
          p.node_id != state.me.node_id,
          pred.(p),
          not Map.has_key?(state.down_since, p.node_id),
          into: %{},
          do: {p.node_id, {p.incarnation, p.pid, now}}

    %{state | down_since: Map.merge(state.down_since, down)}
  end

  # Missed beats -> down; down too long -> removed from the map.
  defp expire(state) do
    now = System.monotonic_time(:millisecond)
    conf = state.conf

    state =
      mark_down(state, fn p ->
        now - Map.get(state.last_seen, p.pid, now) > conf[:down_after]
      end)

    {gone, kept} =
      Enum.split_with(state.down_since, fn {_, {_inc, _pid, since}} ->
        now - since > conf[:permdown_after]
      end)

    Enum.each(gone, fn {id, _} -> CRDT.delete(state.crdt, {:node, id}) end)
    %{state | down_since: Map.new(kept)}
  end

  # Recomputes the local view from the CRDT and emits the differences.
  defp rebuild_view(state) do
    old = state.table |> :ets.tab2list() |> Map.new()

    new =
      for {{:node, id}, %Presence{} = p} <- CRDT.to_map(state.crdt), into: %{} do
        status = View.status(p, Map.get(state.down_since, id))

        {id, %{p | status: status}}
      end

    for {id, p} <- new, Map.get(old, id) != p, do: :ets.insert(state.table, {id, p})

    state =
      Enum.reduce(new, state, fn {_id, p}, state ->
        if Map.has_key?(state.last_seen, p.pid), do: state, else: seen(state, p.pid)
      end)

    for {id, _} <- old, not Map.has_key?(new, id), do: :ets.delete(state.table, id)
    Enum.each(View.events(old, new), &emit(state, &1))
    state
  end

  defp emit(state, {kind, p}) do
    level = if kind == :update, do: :debug, else: :info
    Logger.log(level, "[Keyring.Coordinator] #{kind} #{p.node} (incarnation #{p.incarnation})")
    message = {:keyring_presence, kind, p}
    PubSub.local_broadcast(PubSub.presence_topic(), message, instance: state.instance)
  end
end
