defmodule Keyring.Cluster.Distribution do
  @moduledoc false
  # Starts Erlang distribution (the cluster plane) for a Keyring node, the
  # way `mix keyring.start` and the demo do:
  #
  # - listening only on the address of the node's host part (loopback by
  #   default): `inet_dist_use_interface` is put in the kernel environment
  #   before net_kernel starts, and the listen socket's address is checked
  #   after (start/2 fails if it is not bound there);
  # - epmd started on that address too (when none is running yet);
  # - with the given cookie (Keyring.Cluster.Cookie; never printed);
  # - optionally over TLS (inet_tls_dist, TLS 1.3, mutual verify_peer with
  #   fail_if_no_peer_cert): the protocol is chosen when the VM boots, so
  #   tls_erl_args/2 writes the option file and gives the VM flags, and
  #   start/2 refuses TLS options in a VM started without them.
  #
  # Anyone who completes the distribution handshake has full control of the
  # node (OTP's threat model): the cookie and TLS decide who can.

  alias Keyring.Identity.PrivateFile

  @type tls :: [certfile: Path.t(), keyfile: Path.t(), cacertfile: Path.t()]
  @type info :: %{
          node: node(),
          address: :inet.ip4_address(),
          port: :inet.port_number(),
          tls: boolean()
        }

  @doc """
  Makes this VM the distributed node `node` (`name@host`). Options: `:host`
  (default `"127.0.0.1"`), `:port` (default any), `:cookie` (an atom,
  required), `:tls` (certfile/keyfile/cacertfile, needs `tls_erl_args/2`'s
  flags at boot).
  """
  @spec start(node(), keyword()) :: {:ok, info()} | {:error, term()}
  def start(node, opts) do
    opts = Keyword.validate!(opts, [:cookie, :port, :tls, host: "127.0.0.1"])
    cookie = Keyword.fetch!(opts, :cookie)

    with {:ok, ip} <- interface(opts[:host]),
         :ok <- tls_ready(opts[:tls]),
         :ok <- start_epmd(ip),
         :ok <- configure(ip, opts[:port]),
         :ok <- start_net_kernel(node),
         true <- Node.set_cookie(cookie),
         {:ok, {address, port}} <- listen_address(),
         :ok <- bound_to(ip, address) do
      {:ok, %{node: node(), address: address, port: port, tls: tls?()}}
    end
  end

  @doc "Whether this VM was started with TLS distribution (`-proto_dist inet_tls`)."
  @spec tls?() :: boolean()
  def tls?, do: :init.get_argument(:proto_dist) == {:ok, [[~c"inet_tls"]]}

  @doc """
  Writes the TLS distribution option file `optfile` (0600) for `tls` and
  returns the VM flags that select it: `-proto_dist inet_tls
  -ssl_dist_optfile OPTFILE`. Both directions use TLS 1.3 with the node's
  certificate and `verify_peer` against `:cacertfile`; the accepting side
  also requires the peer's certificate (`fail_if_no_peer_cert`), and the
  connecting side checks the host part of the peer's node name against the
  peer's certificate.
  """
  @spec tls_erl_args(tls(), Path.t()) :: {:ok, [String.t()]} | {:error, term()}
  def tls_erl_args(tls, optfile) do
    tls = Keyword.validate!(tls, [:certfile, :cacertfile, :keyfile])
    certfile = Keyword.fetch!(tls, :certfile)
    files = [certfile: certfile, keyfile: tls[:keyfile] || certfile, cacertfile: tls[:cacertfile]]

    with :ok <- readable(files) do
      common =
        Enum.map(files, fn {k, path} -> {k, to_charlist(Path.expand(path))} end) ++
          [verify: :verify_peer, versions: [:"tlsv1.3"]]

      terms = [server: common ++ [fail_if_no_peer_cert: true], client: common]
      # The early loader only finds a relative option file written as "./...".
      optfile = if Path.type(optfile) == :relative, do: "./" <> optfile, else: optfile

      with :ok <- PrivateFile.write(optfile, :io_lib.format(~c"~p.~n", [terms])) do
        {:ok, ["-proto_dist", "inet_tls", "-ssl_dist_optfile", optfile]}
      end
    end
  end

  @doc "The address and port distribution listens on."
  @spec listen_address() :: {:ok, {:inet.ip_address(), :inet.port_number()}} | {:error, term()}
  def listen_address do
    [name, host] = node() |> Atom.to_string() |> String.split("@", parts: 2)

    with {:port, port, _version} <- :erl_epmd.port_please(to_charlist(name), to_charlist(host)),
         [address | _] <- listening_on(port) do
      {:ok, {address, port}}
    else
      _ -> {:error, :no_listen_socket}
    end
  end

  defp listening_on(port) do
    for p <- Port.list(),
        :erlang.port_info(p, :name) == {:name, ~c"tcp_inet"},
        {:ok, {address, ^port}} <- [:inet.sockname(p)],
        do: address
  end

  defp interface(host) do
    host = to_charlist(host)

    case :inet.parse_ipv4strict_address(host) do
      {:ok, ip} ->
        {:ok, ip}

      {:error, _} ->
        case :inet.getaddr(host, :inet) do
          {:ok, ip} -> {:ok, ip}
          {:error, reason} -> {:error, {:bad_host, to_string(host), reason}}
        end
    end
  end

  defp tls_ready(nil), do: :ok
  defp tls_ready(_tls), do: if(tls?(), do: :ok, else: {:error, :tls_needs_boot_flags})

  defp start_epmd(ip) do
    case System.find_executable("epmd") do
      nil ->
        {:error, :epmd_not_found}

      epmd ->
        # Listens on `ip` and loopback; does nothing if an epmd is running.
        # `-daemon` returns before the daemon listens: registering at once
        # fails with :nodistribution on a machine where no epmd ran yet.
        System.cmd(epmd, ["-daemon", "-address", to_string(:inet.ntoa(ip))])
        await_epmd(ip, System.monotonic_time(:millisecond) + 5_000)
    end
  end

  defp await_epmd(ip, deadline) do
    case :erl_epmd.names(ip) do
      {:ok, _} ->
        :ok

      {:error, _} ->
        if System.monotonic_time(:millisecond) > deadline do
          {:error, :epmd_not_listening}
        else
          Process.sleep(20)
          await_epmd(ip, deadline)
        end
    end
  end

  defp configure(ip, port) do
    :ok = :application.set_env(:kernel, :inet_dist_use_interface, ip)

    if port do
      :ok = :application.set_env(:kernel, :inet_dist_listen_min, port)
      :ok = :application.set_env(:kernel, :inet_dist_listen_max, port)
    end

    :ok
  end

  defp start_net_kernel(node) do
    case Node.start(node, :longnames) do
      {:ok, _} -> :ok
      {:error, reason} -> {:error, {:distribution, reason}}
    end
  end

  defp bound_to(ip, ip), do: :ok

  defp bound_to(ip, address) do
    Node.stop()
    {:error, {:not_bound, expected: ip, listening: address}}
  end

  defp readable(files) do
    Enum.reduce_while(files, :ok, fn
      {key, nil}, _ ->
        {:halt, {:error, {:tls_file_missing, key}}}

      {key, path}, _ ->
        case File.read(path) do
          {:ok, _} -> {:cont, :ok}
          {:error, reason} -> {:halt, {:error, {:tls_file, key, path, reason}}}
        end
    end)
  end
end
