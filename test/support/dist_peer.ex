defmodule Keyring.Test.DistPeer do
  @moduledoc false
  # BEAM VMs (OTP :peer, driven over stdio) whose distribution is started
  # the way `mix keyring.start` starts it (Keyring.Cluster.Distribution),
  # or deliberately otherwise, for tests of who can connect to a node.

  alias Keyring.Cluster.Distribution

  @doc """
  Boots a VM that is not distributed yet. `erl_args` are extra VM flags
  (such as Distribution.tls_erl_args/2's).
  """
  def boot(erl_args \\ []) do
    args = Enum.map(erl_args, &to_charlist/1) ++ Enum.flat_map(:code.get_path(), &[~c"-pa", &1])
    {:ok, peer, _} = :peer.start(%{connection: :standard_io, args: args, wait_boot: 30_000})
    # Refused handshakes (the point of these tests) are logged there as
    # notices and errors; keep the test output for failures.
    :ok = call(peer, :logger, :set_primary_config, [:level, :critical])
    peer
  end

  @doc "Boots a VM and starts its distribution as `name@127.0.0.1`."
  def start(name, dist_opts, erl_args \\ []) do
    peer = boot(erl_args)
    node = :"#{name}@127.0.0.1"

    case call(peer, Distribution, :start, [node, dist_opts]) do
      {:ok, info} -> {peer, node, info}
      {:error, reason} -> raise "distribution of #{node} did not start: #{inspect(reason)}"
    end
  end

  @doc """
  A VM distributed at boot the old way: `-name` and `-setcookie COOKIE` on
  its command line (listening on loopback only, so the test opens nothing).
  """
  def start_with_cookie_flag(name, cookie) do
    args =
      [~c"-setcookie", to_charlist(cookie)] ++
        [~c"-kernel", ~c"inet_dist_use_interface", ~c"{127,0,0,1}"] ++
        Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    {:ok, peer, node} =
      :peer.start(%{
        name: to_charlist(name),
        host: ~c"127.0.0.1",
        longnames: true,
        connection: :standard_io,
        args: args,
        wait_boot: 30_000
      })

    {peer, node}
  end

  def call(peer, m, f, a, timeout \\ 30_000), do: :peer.call(peer, m, f, a, timeout)

  def stop(peer) do
    :peer.stop(peer)
  catch
    _, _ -> :ok
  end

  @doc "A node name no other test run uses (runs share one epmd)."
  def unique(prefix), do: "#{prefix}_#{System.pid()}_#{System.unique_integer([:positive])}"

  @doc "Local addresses other than 127.0.0.1 (at least 127.0.0.2)."
  def other_local_addresses do
    {:ok, ifs} = :inet.getifaddrs()

    found =
      for {_name, props} <- ifs,
          {:addr, {a, _, _, _} = ip} <- props,
          a != 127,
          do: ip

    found ++ [{127, 0, 0, 2}]
  end
end
