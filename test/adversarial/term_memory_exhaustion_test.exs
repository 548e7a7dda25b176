defmodule Keyring.Adversarial.TermMemoryExhaustionTest do
  # Issue 8, item 7: the term decoder reserved `Vec::with_capacity(n)` for
  # any count n the bytes left could hold, at each of 64 nesting levels: a
  # 2 MiB request added 6 GiB of address space, and under `ulimit -v 16G`
  # one 8 MiB request aborted the VM. Replies were decoded the same way.
  #
  # Here the victim node runs under `ulimit -v` (its own size after start
  # plus 1.5 GiB: far less than the old decoder reserved for one 2 MiB
  # body). It decodes the worst bodies as requests (the decoder Dispatch
  # runs on every request body), and receives them over QUIC as replies
  # from a member whose codec was replaced to send raw bytes. It must refuse
  # each with a clear error, stay up, and keep serving an honest member.
  #
  # (Request bodies cannot be crafted from Elixir: the sender's NIF encodes
  # terms. The bytes a request carries reach the same decode/1 as here;
  # keyring_net's hand-built client tests send raw request frames.)
  use ExUnit.Case, async: true

  alias Keyring.Test.{DistPeer, TmpDir}

  @moduletag timeout: 300_000
  @moduletag :linux_proc

  @headroom_kb 1_536 * 1024
  @mib 1024 * 1024

  {:module, _, bodies_bin, _} =
    defmodule Bodies do
      @moduledoc false
      # The worst documents of `size` bytes (loaded into the attacker too).

      # Every level claims as many elements as the bytes left could hold at
      # `per` bytes each (per = 1: the old decoder's rule), 64 levels deep.
      def lying_lists(size, per), do: lying(5, size, per)
      def lying_maps(size), do: lying(7, size, 2)

      defp lying(tag, size, per) do
        doc =
          Enum.reduce(1..64, <<1>>, fn _, acc ->
            acc <> <<tag, div(size - byte_size(acc) - 5, per)::32>>
          end)

        doc <> :binary.copy(<<0>>, size - byte_size(doc))
      end

      # A true document: 62 one-element lists around the longest list of
      # one-letter atoms that fits (`:a` exists everywhere).
      def deep_atoms(size) do
        n = div(size - 1 - 62 * 5 - 5, 3)

        IO.iodata_to_binary([
          1,
          List.duplicate(<<5, 1::32>>, 62),
          <<5, n::32>>,
          :binary.copy(<<4, 1, ?a>>, n)
        ])
      end

      def all do
        for size <- [2 * 1024 * 1024, 8 * 1024 * 1024],
            {kind, body} <- [
              lying_lists: lying_lists(size, 1),
              lying_lists_at_a_third: lying_lists(size, 3),
              lying_maps: lying_maps(size),
              deep_atoms: deep_atoms(size)
            ],
            do: {"#{kind} #{div(size, 1024 * 1024)} MiB", body}
      end

      # On the victim: each body through the decoder every request body
      # goes through.
      def decode_all,
        do: for({what, body} <- all(), do: {what, summary(Keyring.Mesh.TermCodec.decode(body))})

      # On the victim: ask the attacker for body `n` as a reply.
      def call_for_reply(attacker, n),
        do: summary(Keyring.call(attacker, :evil, n, 30_000))

      # On the attacker (whose codec sends {:raw_reply, bytes} as bytes).
      def evil_reply(n), do: {:raw_reply, elem(Enum.at(all(), n), 1)}

      # {:ok, {depth, length of the innermost list}}: not the 0.7 M atoms.
      defp summary({:ok, v}), do: {:ok, shape(v, 0)}
      defp summary(other), do: other
      defp shape([inner], depth) when is_list(inner), do: shape(inner, depth + 1)
      defp shape(list, depth) when is_list(list), do: {depth, length(list)}
    end

  @bodies_bin bodies_bin

  # The attacker's codec: replies `{:raw_reply, bytes}` as the bytes.
  @evil_codec """
  defmodule Keyring.Mesh.TermCodec do
    @moduledoc false
    def encode({:raw_reply, bytes}), do: {:ok, bytes}
    def encode(term), do: Keyring.Native.term_encode_dirty(term)
    def decode(bytes), do: Keyring.Native.term_decode_dirty(bytes)
    def dirty?(_term, _lent \\\\ :infinity), do: true
    def normal_bounds, do: {1_000, 262_144}
  end
  """

  defp vm_kb(peer, field) do
    pid = DistPeer.call(peer, System, :pid, [])
    [_, kb] = Regex.run(~r/#{field}:\s+(\d+) kB/, File.read!("/proc/#{pid}/status"))
    String.to_integer(kb)
  end

  defp start_keyring(peer, dir) do
    {:ok, _} = DistPeer.call(peer, Application, :ensure_all_started, [:keyring])
    :ok = DistPeer.call(peer, Logger, :configure, [[level: :error]])

    {:ok, _} =
      DistPeer.call(peer, Supervisor, :start_child, [
        Keyring.Application.Supervisor,
        {Keyring, data_dir: dir}
      ])

    :ok = DistPeer.call(peer, Keyring, :expose, [:echo, &Function.identity/1])
    DistPeer.call(peer, Keyring.Identity, :node_id, [])
  end

  # A VM under `ulimit -v kb`.
  defp boot_limited(kb) do
    erl = System.find_executable("erl")
    script = ~c"ulimit -v #{kb} && exec \"$0\" \"$@\""
    args = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    {:ok, peer, _} =
      :peer.start(%{
        connection: :standard_io,
        args: args,
        exec: {~c"/bin/sh", [~c"-c", script, to_charlist(erl)]},
        wait_boot: 60_000
      })

    peer
  end

  setup_all do
    root = TmpDir.new("keyring-ulimit")
    on_exit(fn -> File.rm_rf(root) end)

    # The size of a node like the victim, measured on an unlimited twin.
    twin = DistPeer.boot()
    start_keyring(twin, Path.join(root, "twin"))
    {:ok, _} = DistPeer.call(twin, Keyring.Ring, :create, ["twin"])
    limit_kb = vm_kb(twin, "VmSize") + @headroom_kb
    DistPeer.stop(twin)

    victim = boot_limited(limit_kb)
    on_exit(fn -> DistPeer.stop(victim) end)
    victim_id = start_keyring(victim, Path.join(root, "victim"))

    {:module, Bodies} =
      DistPeer.call(victim, :code, :load_binary, [Bodies, ~c"b.beam", @bodies_bin])

    attacker = DistPeer.boot()
    on_exit(fn -> DistPeer.stop(attacker) end)
    attacker_id = start_keyring(attacker, Path.join(root, "attacker"))

    {:module, Bodies} =
      DistPeer.call(attacker, :code, :load_binary, [Bodies, ~c"b.beam", @bodies_bin])

    {:ok, ring} = DistPeer.call(victim, Keyring.Ring, :create, ["ops"])
    {:ok, invite} = DistPeer.call(victim, Keyring.Ring, :invite, [ring])
    {:ok, ^ring} = DistPeer.call(attacker, Keyring, :join, [invite])

    %{
      victim: victim,
      victim_id: victim_id,
      attacker: attacker,
      attacker_id: attacker_id,
      limit_kb: limit_kb
    }
  end

  defp honest_calls_work(ctx) do
    assert {:ok, "hello"} =
             DistPeer.call(ctx.attacker, Keyring, :call, [ctx.victim_id, :echo, "hello", 10_000])

    assert {:ok, "hi"} =
             DistPeer.call(ctx.victim, Keyring, :call, [ctx.attacker_id, :echo, "hi", 10_000])
  end

  test "the node under ulimit -v refuses the worst request bodies and keeps serving", ctx do
    honest_calls_work(ctx)
    assert vm_kb(ctx.victim, "VmSize") < ctx.limit_kb

    for {what, result} <- DistPeer.call(ctx.victim, Bodies, :decode_all, [], 120_000) do
      assert_refused(what, result)
    end

    honest_calls_work(ctx)
    peak = vm_kb(ctx.victim, "VmPeak")
    IO.puts("\nvictim VmPeak #{div(peak, 1024)} MiB, limit #{div(ctx.limit_kb, 1024)} MiB")
  end

  test "the node under ulimit -v refuses the worst replies a member sends and keeps serving",
       ctx do
    DistPeer.call(ctx.attacker, Code, :put_compiler_option, [:ignore_module_conflict, true])

    [{Keyring.Mesh.TermCodec, _}] =
      DistPeer.call(ctx.attacker, Code, :compile_string, [@evil_codec])

    :ok = DistPeer.call(ctx.attacker, Keyring, :expose, [:evil, &Bodies.evil_reply/1])

    for {{what, _body}, n} <- Enum.with_index(Bodies.all()) do
      result = DistPeer.call(ctx.victim, Bodies, :call_for_reply, [ctx.attacker_id, n], 60_000)
      assert_refused(what, result)
    end

    honest_calls_work(ctx)
  end

  # Lying counts are refused at their header; the true 2 MiB document (0.7
  # M values) is within the limits and decodes; the true 8 MiB one holds
  # more values than the budget.
  defp assert_refused("deep_atoms 2 MiB", result),
    do: assert(result == {:ok, {62, div(2 * @mib - 1 - 62 * 5 - 5, 3)}})

  defp assert_refused("deep_atoms 8 MiB", result),
    do: assert({:error, {:too_many_values, 2_097_152}} = result)

  defp assert_refused(what, result) do
    assert {:error, reason} = result, "#{what} was accepted"

    assert match?({:truncated, "a container claims" <> _}, reason) or
             match?({:too_many_values, _}, reason),
           "#{what}: #{inspect(reason)}"
  end
end
