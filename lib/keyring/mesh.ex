defmodule Keyring.Mesh do
  @moduledoc false
  # One per instance: owns the transport, the keyrings this node belongs to
  # (their verified membership logs) and the exposed RPC handles. Calls from
  # callers go straight to the transport from their own process (handles in
  # :persistent_term); this process only handles membership changes and
  # inbound events, and runs handlers in their own processes.

  use GenServer
  require Logger

  alias Keyring.{Instance, Native}
  alias Keyring.Mesh.{AddressBook, Dispatch, RingState}
  alias Keyring.Ring.Persistence

  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts, name: server(opts[:name]))
  end

  @spec server(Keyring.instance()) :: atom()
  def server(instance), do: Instance.child_name(instance, __MODULE__)

  @impl GenServer
  def init(opts) do
    name = opts[:name]
    mesh_opts = Keyword.get(opts, :mesh, [])
    transport = Keyword.get(mesh_opts, :transport, Keyring.Transport.Quic)

    case transport.start(Keyword.put(mesh_opts, :keypair, opts[:keypair])) do
      {:ok, handle} ->
        Process.flag(:trap_exit, true)
        {mesh_addr, join_addr} = transport.addresses(handle)
        Instance.put(name, :mesh, {transport, handle})

        state = %{
          name: name,
          data_dir: opts[:data_dir],
          keypair: opts[:keypair],
          # Seals the root keys of keyrings this node creates (as the identity key).
          passphrase: opts[:passphrase],
          public_key: Native.keypair_public_key(opts[:keypair]),
          transport: transport,
          handle: handle,
          addresses:
            {Keyword.get(mesh_opts, :advertise, mesh_addr),
             Keyword.get(mesh_opts, :advertise_join, join_addr)},
          rings: %{},
          handles: %{},
          joins: %{},
          # Where each peer was last reached (see AddressBook).
          book: %{}
        }

        Instance.put(name, :handles, %{})
        # Published even when empty: a node that belongs to no keyring yet
        # answers calls with {:error, :not_member} instead of raising.
        Instance.put(name, :rings, %{})

        rings =
          for saved <- Persistence.load_all(name),
              {:ok, ring} <- [RingState.restore(saved)],
              into: %{},
              do: {ring.id, ring}

        state = Enum.reduce(Map.values(rings), state, &publish(&2, &1))
        {:ok, redial_known_members(%{state | book: AddressBook.load(name)})}

      {:error, reason} ->
        {:stop, {:mesh, reason}}
    end
  end

  @impl GenServer
  def terminate(_reason, state) do
    state.transport.close(state.handle)
    Enum.each([:mesh, :rings, :handles], &Instance.erase(state.name, &1))
  end

  # --- membership ------------------------------------------------------------

  @impl GenServer
  def handle_call({:create, ring_name}, _from, state) do
    with {:ok, root} <- Native.keypair_generate(),
         {:ok, sealed} <- Native.keypair_seal(root, state.passphrase),
         {:ok, entries} <- Native.log_create(root, ring_name, [state.public_key], now()),
         {:ok, ring} <- RingState.new(entries, sealed) do
      {:reply, {:ok, ring.id}, persist_and_publish(state, ring)}
    else
      error -> {:reply, error, state}
    end
  end

  def handle_call({:change, id, op}, _from, state) do
    with {:ok, ring} <- fetch_ring(state, id),
         {:ok, entry} <- Native.log_append(ring.entries, state.keypair, op, now()),
         {:ok, ring} <- RingState.update(ring, ring.entries ++ [entry]) do
      state = persist_and_publish(state, ring)
      state.transport.push_log(state.handle, id, ring.entries)
      {:reply, {:ok, RingState.info(ring)}, state}
    else
      error -> {:reply, error, state}
    end
  end

  def handle_call({:invite, id, opts}, _from, state) do
    {mesh_addr, join_addr} = state.addresses

    with {:ok, ring} <- fetch_ring(state, id),
         true <- RingState.admin?(ring, state.public_key) || {:error, :not_an_admin},
         {:ok, bytes} <-
           Native.invite_create(
             state.keypair,
             id,
             :crypto.strong_rand_bytes(16),
             now() + opts[:ttl],
             opts[:one_time],
             "#{mesh_addr} #{join_addr}",
             opts[:roles]
           ) do
      {:reply, {:ok, bytes}, state}
    else
      error -> {:reply, error, state}
    end
  end

  def handle_call({:join, bytes, invite, timeout}, from, state) do
    case String.split(invite.address_hint, " ") do
      [mesh_addr, join_addr] ->
        ref = make_ref()
        :ok = state.transport.join(state.handle, ref, join_addr, invite.issuer, bytes, timeout)
        {:noreply, put_in(state.joins[ref], {from, invite, mesh_addr})}

      _ ->
        {:reply, {:error, :bad_address_hint}, state}
    end
  end

  def handle_call({:import, entries}, _from, state) do
    result =
      with {:ok, summary} <- Native.log_verify(entries, now()) do
        case Map.fetch(state.rings, summary.id) do
          {:ok, ring} -> merge(state, ring, entries)
          :error -> adopt(state, entries)
        end
      end

    case result do
      {:ok, ring, state} -> {:reply, {:ok, RingState.info(ring)}, state}
      error -> {:reply, error, state}
    end
  end

  def handle_call({:leave, id}, _from, state) do
    case fetch_ring(state, id) do
      {:ok, _ring} ->
        state.transport.remove_ring(state.handle, id)
        Persistence.delete(state.name, id)
        state = update_in(state.rings, &Map.delete(&1, id))
        publish_view(state)
        {:reply, :ok, state}

      error ->
        {:reply, error, state}
    end
  end

  def handle_call(:addresses, _from, state), do: {:reply, state.addresses, state}

  def handle_call({:info, id}, _from, state) do
    {:reply, with({:ok, ring} <- fetch_ring(state, id), do: {:ok, RingState.info(ring)}), state}
  end

  def handle_call({:log, id}, _from, state) do
    {:reply, with({:ok, ring} <- fetch_ring(state, id), do: {:ok, ring.entries}), state}
  end

  def handle_call({:expose, name, handler, authorize, timeout}, _from, state) do
    handles = Map.put(state.handles, name, {handler, authorize, timeout})
    Instance.put(state.name, :handles, handles)
    {:reply, :ok, %{state | handles: handles}}
  end

  def handle_call({:unexpose, name}, _from, state) do
    handles = Map.delete(state.handles, name)
    Instance.put(state.name, :handles, handles)
    {:reply, :ok, %{state | handles: handles}}
  end

  # --- events from the transport ----------------------------------------------

  @impl GenServer
  def handle_info({:keyring_mesh, {:request, id, ring, peer, name, body}}, state) do
    Dispatch.request(state, id, ring, peer, name, body)
    {:noreply, state}
  end

  def handle_info({:keyring_mesh, {:cast, ring, peer, name, body}}, state) do
    Dispatch.cast(state, ring, peer, name, body)
    {:noreply, state}
  end

  def handle_info({:keyring_mesh, {:join_request, id, peer, invite}}, state) do
    case admit(state, peer, invite) do
      {:ok, ring, state} ->
        state.transport.answer_join(state.handle, id, {:ok, ring.entries})
        state.transport.push_log(state.handle, ring.id, ring.entries)
        {:noreply, state}

      {:error, reason} ->
        Logger.info("keyring: join refused: #{inspect(reason)}")
        state.transport.answer_join(state.handle, id, {:error, refusal(reason)})
        {:noreply, state}
    end
  end

  def handle_info({:keyring_mesh, {:log_update, id, _peer, entries}}, state) do
    with {:ok, ring} <- fetch_ring(state, id),
         {:ok, _ring, state} <- merge(state, ring, entries) do
      {:noreply, state}
    else
      error ->
        Logger.warning("keyring: membership log from a peer refused: #{inspect(error)}")
        {:noreply, state}
    end
  end

  def handle_info({:keyring_mesh, {:peer_up, id, peer, addr}}, state) do
    # A (re)connected peer may have missed changes: offer our log.
    with {:ok, ring} <- fetch_ring(state, id),
         do: state.transport.push_log(state.handle, id, ring.entries)

    notify(state, {:keyring_mesh, :peer_up, %{keyring: id, peer: peer, address: addr}})
    {:noreply, remember_address(state, peer, addr)}
  end

  def handle_info({:keyring_mesh, {:peer_down, id, peer, reason}}, state) do
    notify(state, {:keyring_mesh, :peer_down, %{keyring: id, peer: peer, reason: reason}})
    {:noreply, state}
  end

  def handle_info({:keyring_reply, ref, result}, state) do
    case Map.pop(state.joins, ref) do
      {nil, _} ->
        {:noreply, state}

      {{:hello, from, reply}, joins} ->
        GenServer.reply(from, reply)
        {:noreply, %{state | joins: joins}}

      {{from, invite, mesh_addr}, joins} ->
        state = %{state | joins: joins}

        case finish_join(state, result, invite, mesh_addr) do
          {{:ok, id}, state} ->
            # Answer once our first connection to the admin is admitted, so
            # the admin knows where we listen when the caller gets :ok.
            ref = hello(state, id, invite.issuer, mesh_addr)
            {:noreply, put_in(state.joins[ref], {:hello, from, {:ok, id}})}

          {reply, state} ->
            GenServer.reply(from, reply)
            {:noreply, state}
        end
    end
  end

  def handle_info(_other, state), do: {:noreply, state}

  # --- internals --------------------------------------------------------------

  # A node that restarts (possibly on another port) dials the members it has
  # an address for, instead of waiting to be called; their links then learn
  # its new address.
  defp redial_known_members(state) do
    for {peer, address} <- state.book, do: add_address(state, peer, address)

    for {id, ring} <- state.rings,
        {peer, _expires} <- RingState.transport_members(ring),
        peer != state.public_key and Map.has_key?(state.book, peer),
        do: state.transport.keep_connected(state.handle, id, peer)

    state
  end

  defp add_address(state, peer, address) do
    state.transport.add_address(state.handle, peer, address)
  rescue
    # A stored address the transport cannot parse: forget it, keep going.
    ArgumentError -> :ok
  end

  # Saved off the mesh process: a durable write takes an fsync.
  defp remember_address(state, peer, address) do
    if Map.get(state.book, peer) == address do
      state
    else
      name = state.name

      Task.start(fn ->
        try do
          AddressBook.save(name, peer, address)
        catch
          # The instance is shutting down.
          :exit, _ -> :ok
        end
      end)

      put_in(state.book[peer], address)
    end
  end

  defp finish_join(state, {:ok, entries}, invite, mesh_addr) do
    with {:ok, summary} <- Native.log_verify(entries, now()),
         true <- summary.id == invite.keyring_id || {:error, :wrong_keyring},
         true <- member_key?(summary, state.public_key) || {:error, :not_admitted},
         {:ok, ring, state} <- adopt_or_merge(state, entries) do
      state.transport.add_address(state.handle, invite.issuer, mesh_addr)
      {{:ok, ring.id}, state}
    else
      error -> {error, state}
    end
  end

  defp finish_join(state, {:error, reason}, _invite, _mesh_addr), do: {{:error, reason}, state}

  defp adopt_or_merge(state, entries) do
    {:ok, summary} = Native.log_verify(entries, now())

    case Map.fetch(state.rings, summary.id) do
      {:ok, ring} -> merge(state, ring, entries)
      :error -> adopt(state, entries)
    end
  end

  @hello "keyring.hello"

  # Connects once so the admin learns where we listen; answers to the ref.
  defp hello(state, ring, peer, address) do
    ref = make_ref()
    state.transport.cast(state.handle, ref, ring, peer, address, @hello, nil, 5_000)
    ref
  end

  defp member_key?(summary, key), do: Enum.any?(summary.members, &(elem(&1, 0) == key))

  defp admit(state, peer, invite_bytes) do
    with {:ok, invite} <- Native.invite_verify(invite_bytes, now()),
         {:ok, ring} <- fetch_ring(state, invite.keyring_id),
         true <- RingState.admin?(ring, invite.issuer) || {:error, :issuer_not_admin},
         true <- RingState.admin?(ring, state.public_key) || {:error, :not_an_admin},
         false <- invite.one_time and invite.token in ring.spent && {:error, :invite_spent},
         {:ok, entry} <-
           Native.log_append(
             ring.entries,
             state.keypair,
             {:add_member, peer, 0, invite.roles},
             now()
           ),
         {:ok, ring} <- RingState.update(ring, ring.entries ++ [entry]) do
      ring = if invite.one_time, do: %{ring | spent: [invite.token | ring.spent]}, else: ring
      {:ok, ring, persist_and_publish(state, ring)}
    end
  end

  defp refusal(:not_found), do: :unknown_keyring
  defp refusal(_), do: :bad_invite

  defp merge(state, ring, incoming) do
    with {:ok, merged} <- Native.log_merge(ring.entries, incoming),
         {:ok, new_ring} <- RingState.update(ring, merged) do
      if length(merged) > length(ring.entries),
        do: {:ok, new_ring, persist_and_publish(state, new_ring)},
        else: {:ok, ring, state}
    end
  end

  defp adopt(state, entries) do
    with {:ok, ring} <- RingState.new(entries, nil) do
      {:ok, ring, persist_and_publish(state, ring)}
    end
  end

  defp fetch_ring(state, id) do
    case Map.fetch(state.rings, id) do
      {:ok, ring} -> {:ok, ring}
      :error -> {:error, :not_found}
    end
  end

  defp persist_and_publish(state, ring) do
    case Persistence.save(state.name, RingState.to_saved(ring)) do
      :ok -> :ok
      {:error, reason} -> Logger.error("keyring: could not save ring: #{inspect(reason)}")
    end

    publish(state, ring)
  end

  defp publish(state, ring) do
    state = put_in(state.rings[ring.id], ring)
    state.transport.set_members(state.handle, ring.id, RingState.transport_members(ring))
    publish_view(state)
    notify(state, {:keyring_mesh, :membership, RingState.info(ring)})
    state
  end

  @topic "keyring:mesh"

  @doc false
  def topic, do: @topic

  defp notify(state, message) do
    Keyring.PubSub.local_broadcast(@topic, message, keyring: state.name)
  catch
    # PubSub not running (e.g. while the instance shuts down).
    _, _ -> :ok
  end

  # What callers read without a GenServer hop: members and roles per ring.
  defp publish_view(state) do
    view = Map.new(state.rings, fn {id, ring} -> {id, RingState.view(ring)} end)
    Instance.put(state.name, :rings, view)
  end

  @doc false
  def now, do: System.os_time(:millisecond)
end
