defmodule Keyring.Mesh.Handles do
  @moduledoc false
  # The RPC handles an instance exposes, and the admission gate their
  # handlers pass.
  #
  # Handles live in :persistent_term (read on every inbound request, written
  # only by Keyring.Mesh.Server on expose/unexpose).
  #
  # The gate is an ETS table with one row per inbound request being served,
  # `{dispatcher_pid, keyring, peer, phase}` (phase :admitting, then
  # `{:running, handler_pid}`), and one counter row per peer. It gives two
  # guarantees:
  #
  #   * revocation is final: `revoke/3` runs after the new membership view is
  #     published; it waits for every request of the revoked key that is still
  #     :admitting (it will see the new view, or has just passed the check)
  #     and kills the handler of every one that is running. When it returns,
  #     no handler of that key runs and none can start.
  #   * a peer runs at most `limit` handlers at once; more are refused.

  alias Keyring.Instance

  @type handle :: %{
          handler: function(),
          authorize: (map() -> boolean()),
          timeout: pos_integer(),
          keyrings: :any | :sole | [<<_::256>>],
          expose_errors: boolean()
        }

  @doc "Creates the gate table (owned by the calling process) and an empty registry."
  @spec init(Keyring.instance()) :: :ok
  def init(instance) do
    gate = :ets.new(:keyring_mesh_gate, [:set, :public, write_concurrency: true])
    Instance.put(instance, :gate, gate)
    Instance.put(instance, :handles, %{})
  end

  @spec terminate(Keyring.instance()) :: :ok
  def terminate(instance) do
    Instance.erase(instance, :handles)
    Instance.erase(instance, :gate)
  end

  @spec put(Keyring.instance(), String.t(), handle()) :: :ok
  def put(instance, name, handle),
    do: Instance.put(instance, :handles, Map.put(all(instance), name, handle))

  @spec delete(Keyring.instance(), String.t()) :: :ok
  def delete(instance, name),
    do: Instance.put(instance, :handles, Map.delete(all(instance), name))

  @spec all(Keyring.instance()) :: %{String.t() => handle()}
  def all(instance), do: Instance.fetch!(instance, :handles)

  @doc """
  The handle `name` as seen from keyring `ring` of a node that belongs to
  `rings` keyrings: a handle without an explicit scope (`:sole`) serves only
  a node that is in one keyring, so joining a second keyring never opens it
  to that keyring's members.
  """
  @spec lookup(Keyring.instance(), String.t(), <<_::256>>, pos_integer()) ::
          {:ok, handle()} | :error
  def lookup(instance, name, ring, rings) do
    with {:ok, handle} <- Map.fetch(all(instance), name),
         true <- serves?(handle.keyrings, ring, rings) do
      {:ok, handle}
    else
      _ -> :error
    end
  end

  defp serves?(:any, _ring, _rings), do: true
  defp serves?(:sole, _ring, rings), do: rings == 1
  defp serves?(list, ring, _rings), do: ring in list

  @doc """
  Counts one more handler for `peer`, or answers `{:error, :busy}` when it
  already runs `limit` (called before a process is spawned for it).
  """
  @spec reserve(Keyring.instance(), <<_::256>>, pos_integer()) :: :ok | {:error, :busy}
  def reserve(instance, peer, limit) do
    gate = gate!(instance)

    if :ets.update_counter(gate, {:peer, peer}, {2, 1}, {{:peer, peer}, 0}) > limit do
      :ets.update_counter(gate, {:peer, peer}, {2, -1})
      {:error, :busy}
    else
      :ok
    end
  end

  @doc "Enters the gate: the calling process serves a reserved request of `peer` in `ring`."
  @spec enter(Keyring.instance(), <<_::256>>, <<_::256>>) :: true
  def enter(instance, ring, peer),
    do: :ets.insert(gate!(instance), {self(), ring, peer, :admitting})

  @doc """
  Marks the caller's request as admitted (it passed the membership check);
  `handler` is the process that will run its handler (not started yet).
  """
  @spec admitted(Keyring.instance(), pid()) :: true
  def admitted(instance, handler),
    do: :ets.update_element(gate!(instance), self(), {4, {:running, handler}})

  @doc "Leaves the gate and gives the reservation back (the request was served or refused)."
  @spec leave(Keyring.instance()) :: :ok
  def leave(instance) do
    gate = Instance.get(instance, :gate, nil)

    case gate && :ets.take(gate, self()) do
      [{_pid, _ring, peer, _phase}] -> :ets.update_counter(gate, {:peer, peer}, {2, -1})
      _ -> :ok
    end

    :ok
  rescue
    # The instance stopped meanwhile (its table is gone).
    ArgumentError -> :ok
  end

  # A request still being served while its instance stops ends quietly.
  defp gate!(instance) do
    case Instance.get(instance, :gate, nil) do
      nil -> exit(:normal)
      gate -> gate
    end
  end

  @doc """
  Called after the view without `keys` (in `ring`, or in every keyring when
  `ring` is `:all`) was published: waits out the handlers still being
  admitted and kills the running ones.
  """
  @spec revoke(Keyring.instance(), <<_::256>> | :all, [<<_::256>>]) :: :ok
  def revoke(_instance, _ring, []), do: :ok

  def revoke(instance, ring, keys) do
    gate = Instance.fetch!(instance, :gate)
    keys = MapSet.new(keys)

    rows =
      for {pid, r, peer, phase} <- :ets.tab2list(gate),
          is_pid(pid),
          ring == :all or r == ring,
          MapSet.member?(keys, peer),
          do: {pid, phase}

    for {_pid, {:running, handler}} <- rows, do: Process.exit(handler, :kill)
    for {pid, :admitting} <- rows, do: await_admission(gate, pid, 200)

    # Those admitted before the view changed have their handler process now.
    for {pid, :admitting} <- rows,
        [{_, _, _, {:running, handler}}] <- [:ets.lookup(gate, pid)],
        do: Process.exit(handler, :kill)

    :ok
  end

  defp await_admission(gate, pid, tries) do
    case :ets.lookup(gate, pid) do
      [{_, _, _, :admitting}] when tries > 0 ->
        if Process.alive?(pid), do: Process.sleep(1) && await_admission(gate, pid, tries - 1)

      _ ->
        :ok
    end
  end
end
