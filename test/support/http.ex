defmodule Keyring.Test.HTTP do
  @moduledoc false
  # A raw HTTP/1.1 client over :gen_tcp for gateway tests: it sends exactly the
  # bytes a test writes (attacks included) and parses the answer.

  def port(url) do
    %URI{port: port} = URI.parse(url)
    port
  end

  @doc "Sends one request with `connection: close` and reads the whole answer."
  def request(port, method, path, headers \\ [], body \\ "") do
    req =
      ["#{method} #{path} HTTP/1.1\r\n", "host: 127.0.0.1:#{port}\r\n", "connection: close\r\n"] ++
        if(body != "" or method in ["POST", "PUT", "PATCH"],
          do: ["content-length: #{byte_size(body)}\r\n"],
          else: []
        ) ++ Enum.map(headers, fn {k, v} -> "#{k}: #{v}\r\n" end) ++ ["\r\n", body]

    raw(port, req)
  end

  def raw(port, bytes, timeout \\ 30_000) do
    {:ok, s} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false, nodelay: true])
    :ok = :gen_tcp.send(s, bytes)
    data = read_all(s, "", System.monotonic_time(:millisecond) + timeout)
    :gen_tcp.close(s)
    parse(data)
  end

  defp read_all(s, acc, deadline) do
    left = max(deadline - System.monotonic_time(:millisecond), 0)

    case :gen_tcp.recv(s, 0, left) do
      {:ok, data} -> read_all(s, acc <> data, deadline)
      {:error, :closed} -> acc
      {:error, :timeout} -> raise "no complete answer in time: #{inspect(acc, limit: 200)}"
    end
  end

  def parse(data) do
    [head, rest] = :binary.split(data, "\r\n\r\n")
    [status_line | lines] = String.split(head, "\r\n")
    [_, status | _] = String.split(status_line, " ")

    headers =
      for line <- lines,
          [k, v] <- [String.split(line, ":", parts: 2)],
          do: {String.downcase(k), String.trim(v)}

    body = if {"transfer-encoding", "chunked"} in headers, do: dechunk(rest, []), else: rest

    json =
      case Keyring.Gateway.JSON.decode(body) do
        {:ok, v} -> v
        _ -> nil
      end

    %{status: String.to_integer(status), headers: Map.new(headers), body: body, json: json}
  end

  defp dechunk(data, acc) do
    case :binary.split(data, "\r\n") do
      [size_line, rest] ->
        case Integer.parse(size_line, 16) do
          {0, _} ->
            IO.iodata_to_binary(Enum.reverse(acc))

          {n, _} when byte_size(rest) >= n ->
            <<chunk::binary-size(n), "\r\n", more::binary>> = rest
            dechunk(more, [chunk | acc])

          _ ->
            IO.iodata_to_binary(Enum.reverse(acc))
        end

      _ ->
        IO.iodata_to_binary(Enum.reverse(acc))
    end
  end

  def bearer(token), do: {"authorization", "Bearer #{token}"}

  @doc "Opens an SSE stream; read it with `sse_until/3`."
  def sse_open(port, path \\ "/v1/events", headers \\ []) do
    {:ok, s} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false, nodelay: true])

    req =
      ["GET #{path} HTTP/1.1\r\nhost: 127.0.0.1:#{port}\r\n"] ++
        Enum.map(headers, fn {k, v} -> "#{k}: #{v}\r\n" end) ++ ["\r\n"]

    :ok = :gen_tcp.send(s, req)
    {s, ""}
  end

  @doc "Reads until the stream's text contains `needle`; returns {text, stream}."
  def sse_until({s, acc}, needle, timeout \\ 10_000) do
    deadline = System.monotonic_time(:millisecond) + timeout
    sse_loop(s, acc, needle, deadline, 0)
  end

  # Searches only what arrived since the last look (plus an overlap), so a
  # long stream costs linear time.
  defp sse_loop(s, acc, needle, deadline, from) do
    scope = {from, byte_size(acc) - from}

    if :binary.match(acc, needle, scope: scope) != :nomatch do
      {acc, {s, acc}}
    else
      from = max(byte_size(acc) - byte_size(needle), 0)
      left = deadline - System.monotonic_time(:millisecond)

      if left <= 0,
        do: raise("no #{inspect(needle)} on the stream in time; got #{inspect(acc, limit: 300)}")

      case :gen_tcp.recv(s, 0, left) do
        {:ok, data} ->
          sse_loop(s, acc <> data, needle, deadline, from)

        {:error, reason} ->
          raise "stream ended (#{inspect(reason)}) before #{inspect(needle)}: #{inspect(acc, limit: 300)}"
      end
    end
  end
end
