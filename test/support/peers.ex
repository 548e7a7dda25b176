defmodule Keyring.Test.Peers do
  @moduledoc false
  # Real BEAM VMs on loopback (OTP :peer) running Keyring, for cluster tests
  # and benchmarks. The runner talks to each peer over its stdio, so it is not
  # part of the cluster; peers are distributed among themselves with
  # connect_all false (nobody connects transitively) and dist_auto_connect
  # once (a partition stays a partition until someone connects explicitly).
  # They listen on loopback only, with a cookie drawn for this test run.

  defstruct [:name, :node, :peer, :dir]

  def start(name, opts \\ []) do
    dir = Keyword.get_lazy(opts, :dir, fn -> tmp_dir(name) end)

    args =
      [
        ~c"-setcookie",
        to_charlist(Keyring.Test.Distribution.cookie()),
        ~c"-connect_all",
        ~c"false"
      ] ++
        [~c"-kernel", ~c"inet_dist_use_interface", ~c"{127,0,0,1}"] ++
        [~c"-kernel", ~c"dist_auto_connect", ~c"once"] ++
        [~c"-kernel", ~c"prevent_overlapping_partitions", ~c"false"] ++
        Enum.flat_map(Keyword.get(opts, :erl_args, []), &[to_charlist(&1)]) ++
        Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    ensure_epmd()

    {:ok, peer, node} =
      :peer.start(%{
        name: to_charlist(name),
        host: ~c"127.0.0.1",
        longnames: true,
        connection: :standard_io,
        args: args,
        wait_boot: 30_000
      })

    p = %__MODULE__{name: name, node: node, peer: peer, dir: dir}
    {:ok, _} = call(p, Application, :ensure_all_started, [:keyring])
    :ok = call(p, Logger, :configure, [[level: Keyword.get(opts, :log_level, :warning)]])

    keyring_opts =
      [data_dir: dir, coordinator: Keyword.get(opts, :coordinator, [])] ++
        Keyword.get(opts, :instance_opts, [])

    {:ok, _} =
      call(p, Supervisor, :start_child, [Keyring.Application.Supervisor, {Keyring, keyring_opts}])

    p
  end

  def start_many(prefix, n, opts \\ []) do
    # unique_integer restarts with every VM, and several test runs may share
    # one epmd: the OS pid keeps their node names apart.
    suffix = "#{System.pid()}_#{System.unique_integer([:positive])}"
    Enum.map(1..n, &start(:"#{prefix}#{&1}_#{suffix}", opts))
  end

  def call(%__MODULE__{peer: peer}, m, f, a, timeout \\ 15_000),
    do: :peer.call(peer, m, f, a, timeout)

  def connect(%__MODULE__{} = a, %__MODULE__{node: b}), do: call(a, Node, :connect, [b])

  def connect_all(peers) do
    for a <- peers, b <- peers, a.node < b.node, do: true = connect(a, b)
    :ok
  end

  def disconnect(%__MODULE__{} = a, %__MODULE__{node: b}),
    do: call(a, :erlang, :disconnect_node, [b])

  # Abrupt death: the VM halts, sockets close, others see nodedown.
  def kill(%__MODULE__{peer: peer} = p) do
    try do
      :peer.cast(peer, :erlang, :halt, [137])
    catch
      _, _ -> :ok
    end

    wait_dead(p)
  end

  defp wait_dead(%__MODULE__{peer: peer}) do
    ref = Process.monitor(peer)

    receive do
      {:DOWN, ^ref, _, _, _} -> :ok
    after
      10_000 -> :peer.stop(peer)
    end
  end

  def stop(%__MODULE__{peer: peer}) do
    try do
      :peer.stop(peer)
    catch
      _, _ -> :ok
    end
  end

  def stop_all(peers), do: Enum.each(peers, &stop/1)

  def active_nodes(p),
    do: p |> call(Keyring.Coordinator, :active_nodes, []) |> Enum.map(& &1.node)

  def presence(p, opts \\ []), do: call(p, Keyring.Coordinator, :presence, [opts])

  def tmp_dir(name) do
    # unique_integer restarts with every VM: add random bytes so a run never
    # reuses (and inherits the store of) an earlier run's directory.
    suffix =
      "#{System.unique_integer([:positive])}-#{Base.encode16(:crypto.strong_rand_bytes(4))}"

    Path.join(System.tmp_dir!(), "keyring-peer-#{name}-#{suffix}")
  end

  defp ensure_epmd, do: System.cmd("epmd", ["-daemon"])
end
